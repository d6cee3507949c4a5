"""Test accuracy of `zoo train` from scratch on a small dataset against its
optimizer-step budget: is the default floor (--min-steps 1000) well chosen?

    python benchmarks/budget.py [--per-class 50] [--steps 250,500,1000,2000,4000]

The dataset is a stratified subset of Fashion-MNIST's training split
(`--per-class` images per class; 500 by default, 450 after the 10 %
validation hold-out) with the official 10,000-image test split; it needs
/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist). Each
row is `zoo train resnet20` with default flags but `--min-steps`; the first
row is the old default, `--epochs 10`. Prints the machine and a markdown
table.
"""

from __future__ import annotations

import argparse
import json
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

common = runpy.run_path(str(Path(__file__).with_name("common.py")))
FASHION = "/usr/share/datasets/fashion-mnist"


# The table of docs/training.md, as printed here.
TABLE = "| run | optimizer steps | test accuracy | wall time |"


def markdown(result) -> str:
    lines = [f"resnet20, {result['train_images']} Fashion-MNIST training images, batch 64, "
             f"test split 10,000 images. Machine: "
             f"{common['machine_line'](result['machine'])}.", "", TABLE, "|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['steps']} | {r['test_accuracy']:.4f} | {r['seconds']:.0f} s |"
              for r in result["rows"]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--steps", default="250,500,1000,2000,4000")
    args = common["parse"](parser, markdown)
    if args is None:
        return
    print(common["machine"](), flush=True)
    from zoo.data import _arrays
    a = _arrays("fashion_mnist", FASHION)
    rng = np.random.default_rng(0)
    keep = np.concatenate([rng.permutation(np.flatnonzero(a.y_train == c))[:args.per_class]
                           for c in range(10)])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        npz = Path(folder) / "small.npz"
        np.savez(npz, x_train=a.x_train[keep], y_train=a.y_train[keep],
                 x_test=a.x_test, y_test=a.y_test)
        runs = [("`--epochs 10` (the old default)", ["--epochs", "10"])]
        runs += [(f"`--min-steps {s}`" + (" (default)" if s == "1000" else ""),
                  ["--min-steps", s]) for s in args.steps.split(",")]
        for label, extra in runs:
            out = Path(folder) / "-".join(extra)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "zoo.cli", "train", "resnet20",
                                   "--dataset", f"npz:{npz}", "--out", str(out), *extra],
                                  capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr[-2000:])
            m = json.loads((out / "metrics.json").read_text())
            rows.append({"run": label, "steps": m["optimizer_steps"],
                         "test_accuracy": m["test_accuracy"],
                         "seconds": time.perf_counter() - start})
            print(rows[-1], flush=True)
    result = {"machine": common["machine"](), "args": vars(args),
              "train_images": len(keep), "rows": rows}
    print(markdown(result))
    common["dump"](args.json, result)

if __name__ == "__main__":
    main()
