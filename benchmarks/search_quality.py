"""Does `zoo tune` with default flags hand back a model at least as good as
`zoo train` with default flags, and close to a hand-tuned run?

    python benchmarks/search_quality.py [--datasets digits,fashion1000]
        [--model resnet20] [--trials 10] [--spaces focused] [--out runs/sq]
        [--tune-only]

For each dataset, four commands are run as a user would run them and timed:

* `zoo train NAME --dataset D` (default flags);
* the hand-tuned reference, `zoo train NAME --dataset D --augment light
  --lr 3e-3 --min-steps 2000` (docs/tuning.md says how it was chosen);
* `zoo tune NAME --dataset D --max-trials 10 --out ...` (default flags; with
  `--spaces focused,wide` also `--space wide`), whose test accuracy is that
  of the retrained `best_model.keras` (report.md).

`fashion1000` is a stratified 1,000-image subset of Fashion-MNIST's
training split (100 per class, seed 1) with the official 10,000-image test
split; it needs /usr/share/datasets/fashion-mnist (Debian's
dataset-fashion-mnist). Prints the machine and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import runpy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

common = runpy.run_path(str(Path(__file__).with_name("common.py")))
FASHION = "/usr/share/datasets/fashion-mnist"
REFERENCE = ["--augment", "natural", "--lr", "3e-3", "--min-steps", "2000"]


def fashion_subset(path, per_class=100, seed=1):
    from zoo.data import _arrays
    a = _arrays("fashion_mnist", FASHION)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(a.y_train == c))[:per_class]
                           for c in range(10)])
    np.savez(path, x_train=a.x_train[keep], y_train=a.y_train[keep],
             x_test=a.x_test, y_test=a.y_test)


def zoo(*argv):
    """Runs `zoo ARGV`; returns its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zoo.cli", *argv], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def test_accuracy(folder, tuned=False):
    if tuned:
        return json.loads((Path(folder) / "final.json").read_text())["best"]["test_accuracy"]
    return json.loads((Path(folder) / "metrics.json").read_text())["test_accuracy"]


def run_dataset(name, source, args, out):
    rows = []
    runs = [] if args.tune_only else [
        ("`zoo train` defaults", ["train", args.model, "--dataset", source], False),
        ("hand-tuned reference", ["train", args.model, "--dataset", source, *REFERENCE],
         False)]
    for space in args.spaces.split(","):
        extra = [] if space == "focused" else ["--space", space]
        runs.append((f"`zoo tune` ({space} space)",
                     ["tune", args.model, "--dataset", source, "--max-trials",
                      str(args.trials), *extra], True))
    for label, argv, tuned in runs:
        folder = out / name / label.split()[-2 if tuned else -1].strip("(`")
        wall = zoo(*argv, "--out", str(folder))
        rows.append({"dataset": name, "run": label, "command": "zoo " + " ".join(argv),
                     "test_accuracy": test_accuracy(folder, tuned), "wall_time_s": wall})
        print(f"{name:12s} {label:28s} {rows[-1]['test_accuracy']:.4f} {wall:7.0f} s",
              flush=True)
    return rows


# The table of docs/tuning.md, as printed here (tests/test_benchmarks.py
# checks that the doc has this header).
TABLE = "| dataset | command | test accuracy | wall time |"


def markdown(result) -> str:
    lines = [f"Machine: {common['machine_line'](result['machine'])}.", "",
             TABLE, "|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['run']}: `{r['command']}` | "
              f"{r['test_accuracy']:.4f} | {r['wall_time_s']:,.0f} s |" for r in result["rows"]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,fashion1000")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--spaces", default="focused")
    parser.add_argument("--out", default="runs/search_quality")
    parser.add_argument("--tune-only", action="store_true",
                        help="run only the zoo tune rows")
    args = common["parse"](parser, markdown)
    if args is None:
        return
    print(common["machine"](), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets.split(","):
        source = name
        if name == "fashion1000":
            path = out / "fashion1000.npz"
            if not path.is_file():
                fashion_subset(path)
            source = f"npz:{path}"
        rows += run_dataset(name, source, args, out)
    result = {"machine": common["machine"](), "args": vars(args), "rows": rows}
    print(markdown(result))
    common["dump"](args.json, result)


if __name__ == "__main__":
    main()
