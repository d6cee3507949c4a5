"""Transfer learning with default flags on two offline targets, at 10, 50 and
all labels per class: `zoo train --fine-tune` vs its linear probe vs
`zoo train` from scratch (same default step budget).

    python benchmarks/transfer.py [--targets digits,fashion5] [--seeds 0,1,2]
        [--source-dir DIR] [--json out.json]

Targets:

* ``digits`` – scikit-learn digits resized to 28×28×1, from the shipped
  `resnet20.fashion_mnist` checkpoint (a weakly related source); test split:
  zoo.data's fixed 360 digits.
* ``fashion5`` – Fashion-MNIST classes 5–9 (sandal, shirt, sneaker, bag,
  ankle boot), from a resnet20 trained here with default flags on classes
  0–4 (a related source, disjoint classes); test split: the official test
  images of classes 5–9 (5,000). Needs /usr/share/datasets/fashion-mnist
  (Debian's dataset-fashion-mnist).

Every run is the public command line with default flags; the linear probe
is phase 1 of the same recipe (`zoo.transfer.prepare`) evaluated on the
test split. Prints the machine and a markdown table.
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


def subset(x, y, per_class, seed=0):
    if per_class is None:
        return x, y
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class]
                           for c in np.unique(y)])
    return x[keep], y[keep]


def digits_arrays():
    import tensorflow as tf
    from zoo.data import _arrays
    a = _arrays("digits", None)

    def to28(x):
        return tf.image.resize(x.astype("float32"), (28, 28)).numpy().clip(0, 255) \
            .astype("uint8")
    return to28(a.x_train), a.y_train, to28(a.x_test), a.y_test


def fashion_arrays(classes):
    from zoo.data import _arrays
    a = _arrays("fashion_mnist", FASHION)
    lo = min(classes)
    tr, te = np.isin(a.y_train, classes), np.isin(a.y_test, classes)
    return a.x_train[tr], a.y_train[tr] - lo, a.x_test[te], a.y_test[te] - lo


def zoo_cli(*argv):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "zoo.cli", *argv], capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"zoo {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - start


def probe_accuracy(npz, weights):
    """Phase 1 alone (new head fit by the linear probe), on the test split."""
    import zoo
    from zoo import data as data_lib, transfer
    d = data_lib.load(f"npz:{npz}", batch_size=64, seed=0)
    model = zoo.create_model("resnet20", weights=weights, num_classes=d.info.num_classes,
                             input_shape=d.info.image_shape)
    transfer.prepare(model, d.train, d.val)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return float(model.evaluate(d.test, verbose=0)[1])


def run_target(target, folder, source_dir=None, seeds=(0,)):
    folder = Path(folder)
    if target == "digits":
        xtr, ytr, xte, yte = digits_arrays()
        weights = "fashion_mnist"
        source = "resnet20.fashion_mnist"
    else:
        if source_dir is None:
            xs, ys, xst, yst = fashion_arrays([0, 1, 2, 3, 4])
            np.savez(folder / "source.npz", x_train=xs, y_train=ys, x_test=xst,
                     y_test=yst)
            source_dir = folder / "source"
            out, _ = zoo_cli("train", "resnet20", "--dataset",
                             f"npz:{folder / 'source.npz'}", "--out", str(source_dir))
            print(f"source (classes 0-4): {out.strip().splitlines()[-1]}", flush=True)
        metrics = json.loads((Path(source_dir) / "metrics.json").read_text())
        print(f"source (classes 0-4): test accuracy {metrics['test_accuracy']:.4f}",
              flush=True)
        weights = str(Path(source_dir) / "model.keras")
        source = "resnet20 on Fashion-MNIST classes 0-4"
        xtr, ytr, xte, yte = fashion_arrays([5, 6, 7, 8, 9])
    rows = []
    for per_class in (10, 50, None):
        xs, ys = subset(xtr, ytr, per_class)
        npz = folder / f"{target}_{per_class}.npz"
        np.savez(npz, x_train=xs, y_train=ys, x_test=xte, y_test=yte)
        row = {"target": target, "source": source,
               "labels_per_class": per_class or "all", "train_images": len(ys)}
        start = time.perf_counter()
        row["linear_probe"] = probe_accuracy(npz, weights)
        row["probe_s"] = time.perf_counter() - start
        for method, extra in (("fine_tune", ["--weights", weights, "--fine-tune"]),
                              ("scratch", [])):
            scores, secs = [], 0.0
            for seed in seeds:
                out_dir = folder / f"{target}_{per_class}_{method}_{seed}"
                _, took = zoo_cli("train", "resnet20", "--dataset", f"npz:{npz}",
                                  "--out", str(out_dir), "--seed", str(seed), *extra)
                metrics = json.loads((out_dir / "metrics.json").read_text())
                scores.append(metrics["test_accuracy"])
                secs += took / len(seeds)
            row[method] = float(np.mean(scores))
            row[f"{method}_per_seed"] = scores
            row[f"{method}_s"] = secs
            row["steps"] = metrics["optimizer_steps"]
        print(row, flush=True)
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="digits,fashion5")
    parser.add_argument("--source-dir", help="a finished `zoo train resnet20 --dataset "
                        "npz:SOURCE --out DIR` on classes 0-4, to reuse")
    parser.add_argument("--seeds", default="0", help="comma-separated --seed values; "
                        "fine-tune and scratch are averaged over them (default 0)")
    args = common["parse"](parser, markdown)
    if args is None:
        return
    print(common["machine"](), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for target in args.targets.split(","):
            rows += run_target(target, folder, args.source_dir,
                               [int(v) for v in args.seeds.split(",")])
    result = {"machine": common["machine"](), "args": vars(args), "rows": rows}
    print(markdown(result))
    common["dump"](args.json, result)


# The table of docs/transfer.md, as printed here (tests/test_benchmarks.py
# checks that the doc has this header); the best accuracy of a row in bold.
TABLE = ("| target | labels/class | train images | steps | fine-tune (default) | "
         "linear probe | scratch (default) |")
TABLE_TIMES = "| target | labels/class | fine-tune time | scratch time |"


def markdown(result) -> str:
    rows = result["rows"]
    lines = [f"Machine: {common['machine_line'](result['machine'])}; seeds "
             f"{result['args']['seeds']}.", "", TABLE, "|---|---|---|---|---|---|---|"]
    for r in rows:
        scores = [r["fine_tune"], r["linear_probe"], r["scratch"]]
        cells = [f"**{s:.4f}**" if s == max(scores) else f"{s:.4f}" for s in scores]
        lines.append(f"| {r['target']} | {r['labels_per_class']} | {r['train_images']:,} | "
                     f"{r['steps']} | {' | '.join(cells)} |")
    lines += ["", TABLE_TIMES, "|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['labels_per_class']} | {r['fine_tune_s']:.0f} s | "
              f"{r['scratch_s']:.0f} s |" for r in rows]
    return "\n".join(lines)

if __name__ == "__main__":
    main()
