"""Hyperband with median-stopping pruning against random search.

    python benchmarks/tuning.py [--dataset digits] [--trials 12] [--epochs 6]
        [--out runs/tuning_bench] [--json out.json]
    python benchmarks/tuning.py --memory-trials 20     # RSS over 20 trials
    python benchmarks/tuning.py --memory-trials 20 --trials-per-process 5

Three searches (Hyperband + median stopping, random + median stopping,
plain random) use the same model, space and budget; the table shows the
best validation accuracy, total epochs trained, wall time, and the epochs
and time each needed to get within 1 point of the best accuracy either
found.  The searches are also run by `zoo tune`; this script calls
`tuning.search` directly, with the trial budget in passes (`--epochs`), a
holdout validation split (`folds=1`) and no final retraining, so that it
compares the tuners alone.
"""

from __future__ import annotations

import argparse
import csv
import runpy
import shutil
import time
from pathlib import Path

# Loaded by path; it also takes this folder off sys.path (see common.py).
_common = runpy.run_path(str(Path(__file__).with_name("common.py")))
dump, machine, parse, machine_line = (
    _common[k] for k in ("dump", "machine", "parse", "machine_line"))

SPACE = {"optimizer": {"values": ["sgd", "nesterov", "adam", "rmsprop"]},
         "learning_rate": {"min": 1e-4, "max": 0.3, "sampling": "log"},
         "regularizer": {"values": ["none", "l2"]}, "augment": None,
         "label_smoothing": None, "batch_size": {"value": 64}, "depth": None,
         "dropout": None}


def run(kind, prune, args, out):
    import tuning
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    tuning.search(args.model, args.dataset, tuner=kind, max_trials=args.trials,
                  epochs=args.epochs, out=out, seed=args.seed, space=SPACE,
                  image_size=args.image_size, prune=prune, limit=args.limit,
                  folds=1, retrain=False)
    wall = time.perf_counter() - start
    with open(Path(out) / "trials.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["score"]]
    rows.sort(key=lambda r: r["trial_id"])
    return {"tuner": kind, "pruning": prune, "rows": rows, "wall_time_s": wall,
            "epochs": sum(int(r["epochs_run"] or 0) for r in rows),
            "best": max(float(r["score"]) for r in rows),
            "pruned": sum(r["status"] == "PRUNED" for r in rows)}


# The tables of docs/tuning.md, as printed here (the memory table's
# header goes on with the trials measured).
TABLE = ("| search | trials | pruned | epochs | wall time | best val acc | epochs to "
         "within 1 pt | time to within 1 pt |")
TABLE_MEMORY = "| trial | 1 | 5 |"


def _searches(results) -> list[str]:
    target = max(r["best"] for r in results) - 0.01
    lines = [f"Within 1 pt: of the best any search found ({target + 0.01:.4f}).",
             "", TABLE, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        epochs = seconds = 0
        reached = None
        for row in r["rows"]:
            epochs += int(row["epochs_run"] or 0)
            seconds += float(row["wall_time_s"] or 0)
            if float(row["score"]) >= target:
                reached = (epochs, seconds)
                break
        label = f"{r['tuner']}{' + median stopping' if r['pruning'] else ''}"
        got = f"{reached[0]} | {reached[1]:.0f} s" if reached else "not reached | –"
        lines.append(f"| {label} | {len(r['rows'])} | {r['pruned']} | {r['epochs']} | "
                     f"{r['wall_time_s']:.0f} s | {r['best']:.4f} | {got} |")
    return lines


def _memory(args, rss) -> list[str]:
    """RSS after trials 1, 5, 10, 15, ... and the first trial of each new
    process (--trials-per-process)."""
    k = args.get("trials_per_process")
    shown = sorted({1, *range(5, len(rss) + 1, 5), len(rss)}
                   | (set(range(k + 1, len(rss) + 1, k)) if k else set()))
    new = (lambda t: k and t > 1 and (t - 1) % k == 0)
    label = f"RSS, {k} trials per process" if k else "RSS, one process"
    return ["| trial | " + " | ".join(f"{t} (new process)" if new(t) else str(t)
                                       for t in shown) + " |",
            "|---" * (len(shown) + 1) + "|",
            f"| {label} | " + " | ".join(f"{rss[t - 1]:,.0f} MB" for t in shown) + " |"]


def markdown(result) -> str:
    lines = [f"Machine: {machine_line(result['machine'])}.", ""]
    if "rss_mb" in result:
        return "\n".join(lines + _memory(result["args"], result["rss_mb"]))
    return "\n".join(lines + _searches(result["results"]))


def memory(args):
    """Resident memory after each of N trials of one search in one process."""
    import tuning
    out = Path(args.out) / "memory"
    shutil.rmtree(out, ignore_errors=True)
    tuning.search(args.model, args.dataset, tuner="random", max_trials=args.memory_trials,
                  epochs=1, out=out, seed=args.seed, space=SPACE,
                  image_size=args.image_size, prune=False, limit=args.limit,
                  trials_per_process=args.trials_per_process, folds=1, retrain=False)
    with open(out / "trials.csv") as f:
        rss = [float(r["rss_mb"]) for r in sorted(csv.DictReader(f),
                                                  key=lambda r: r["trial_id"])]
    result = {"machine": machine(), "args": vars(args), "rss_mb": rss}
    print(markdown(result))
    dump(args.json, result)
    return rss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/tuning_bench")
    parser.add_argument("--trials-per-process", type=int, metavar="K",
                        help="with --memory-trials: run the trials in fresh "
                             "processes of at most K trials")
    parser.add_argument("--memory-trials", type=int, metavar="N",
                        help="instead: N one-epoch random trials in this process, "
                             "printing resident memory after each")
    args = parse(parser, markdown, argv)
    if args is None:
        return None
    if args.memory_trials:
        return memory(args)
    results = [run("hyperband", True, args, Path(args.out) / "hyperband"),
               run("random", True, args, Path(args.out) / "random_pruned"),
               run("random", False, args, Path(args.out) / "random")]
    result = {"machine": machine(), "args": vars(args), "results": results}
    print(markdown(result))
    dump(args.json, result)
    return results


if __name__ == "__main__":
    main()
