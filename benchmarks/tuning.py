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
dump, machine = _common["dump"], _common["machine"]

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
    print(f"machine: {machine()}\n")
    print("| trials | RSS after trial 1 | after trial 5 | after the last | growth from "
          "trial 5 to the last, per trial |")
    print("|---|---|---|---|---|")
    later = rss[min(4, len(rss) - 1)]
    per_trial = (rss[-1] - later) / max(len(rss) - 5, 1)
    print(f"| {len(rss)} | {rss[0]:.0f} MB | {later:.0f} MB | {rss[-1]:.0f} MB | "
          f"{per_trial:+.1f} MB |")
    dump(args.json, {"args": vars(args), "rss_mb": rss})
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
    parser.add_argument("--json")
    parser.add_argument("--trials-per-process", type=int, metavar="K",
                        help="with --memory-trials: run the trials in fresh "
                             "processes of at most K trials")
    parser.add_argument("--memory-trials", type=int, metavar="N",
                        help="instead: N one-epoch random trials in this process, "
                             "printing resident memory after each")
    args = parser.parse_args(argv)
    if args.memory_trials:
        return memory(args)
    results = [run("hyperband", True, args, Path(args.out) / "hyperband"),
               run("random", True, args, Path(args.out) / "random_pruned"),
               run("random", False, args, Path(args.out) / "random")]
    target = max(r["best"] for r in results) - 0.01
    print(f"machine: {machine()}\n")
    print("| search | trials | pruned | epochs | wall time | best val acc | epochs to "
          "within 1 pt | time to within 1 pt |")
    print("|---|---|---|---|---|---|---|---|")
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
        print(f"| {label} | {len(r['rows'])} | {r['pruned']} | {r['epochs']} | "
              f"{r['wall_time_s']:.0f} s | {r['best']:.4f} | {got} |")
    dump(args.json, {"args": vars(args), "results": results})
    return results


if __name__ == "__main__":
    main()
