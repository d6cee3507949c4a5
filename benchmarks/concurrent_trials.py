"""One trial at a time against two at once (`zoo tune --workers 2`) on this
machine (issue #27: "running two trials at once when one model does not
fill the cores").

    python benchmarks/concurrent_trials.py [--seed 0] [--out runs/concurrent]
        [--json out.json]
    python benchmarks/concurrent_trials.py --markdown out.json   # its table again

Two searches of resnet20 on small_data.py's fashion500 set (500 Fashion-MNIST
images), each run as `zoo tune` without the final retraining, once in one
process and once as a chief with two workers on this host:

* `fixed work`: 4 trials of 3 folds × 150 steps, with median stopping and
  racing off (`--no-pruning --finalists 0`), so both runs do the same
  work: the rate is the concurrency's own gain;
* `8 trials`: the default search without its budget, which a distributed
  search does not have (`--max-trials 8`: median stopping, racing), where
  concurrent trials also change what is pruned (a trial sees fewer finished
  peers). The committed table calls these rows `default`: they were the
  default search before the budget.

The wall time is the whole command's (process start included). Each run
starts from an empty folder under --out (an earlier run's is deleted).
"""

from __future__ import annotations

import argparse
import csv
import os
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

common = runpy.run_path(str(Path(__file__).with_name("common.py")))
small_data = runpy.run_path(str(Path(__file__).with_name("small_data.py")))

SEARCHES = {"fixed work": ["--max-trials", "4", "--trial-steps", "150", "--folds", "3",
                           "--no-pruning", "--finalists", "0"],
            # The default search before its budget (docs/tuning.md): with
            # --workers the budget does not apply, so both rows ask for 8.
            "8 trials": ["--max-trials", "8"]}
TABLE = ("| search | processes | trials | fold runs | optimizer steps | wall time | "
         "trials per hour | fold runs per hour |")


def run(npz, search, workers, seed, out):
    """One `zoo tune` command; its trials.csv summed."""
    argv = [sys.executable, "-m", "zoo.cli", "tune", "resnet20", "--dataset", f"npz:{npz}",
            "--no-retrain", "--seed", str(seed), "--out", str(out), *SEARCHES[search]]
    if workers:
        argv += ["--workers", str(workers)]
    shutil.rmtree(out, ignore_errors=True)     # this script's own folder: a new search
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy())
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    return {"search": search, "workers": workers, "seconds": seconds, "trials": len(rows),
            "fold_runs": sum(int(r["folds_run"] or 0) for r in rows),
            "steps": sum(int(float(r["steps_run"] or 0)) for r in rows)}


def markdown(result) -> str:
    lines = [f"resnet20 on fashion500, seed {result['args']['seed']}. Machine: "
             f"{common['machine_line'](result['machine'])}.", "",
             TABLE, "|---" * TABLE.count(" | ") + "|---|"]
    for r in result["rows"]:
        hours = r["seconds"] / 3600
        processes = "1" if not r["workers"] else f"chief + {r['workers']} workers"
        lines.append(f"| {r['search']} | {processes} | {r['trials']} | {r['fold_runs']} | "
                     f"{r['steps']:,} | {r['seconds']:.0f} s | {r['trials'] / hours:.0f} | "
                     f"{r['fold_runs'] / hours:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/concurrent")
    args = common["parse"](parser, markdown)
    if args is None:
        return
    print(common["machine"](), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    npz = out / "fashion500.npz"
    small_data["build"]("fashion500", npz)
    rows = []
    for search in SEARCHES:
        for workers in (None, 2):
            folder = out / f"{search.replace(' ', '_')}_{workers or 1}"
            rows.append(run(npz, search, workers, args.seed, folder))
            print(rows[-1], flush=True)
    result = {"machine": common["machine"](), "args": vars(args), "rows": rows}
    print("\n" + markdown(result))
    common["dump"](args.json, result)


if __name__ == "__main__":
    main()
