"""A user's plain Keras 3 CNN on a small dataset, pruned 80 % + int8 with
`compression.compress`'s default budget, and the accuracy-vs-steps curve the
default was chosen from.

    python benchmarks/compress_user_cnn.py [--images 500] [--steps 100,300,3000]
        [--out runs/user_cnn] [--json out.json]

The CNN is the one of issue #14 (Conv-Pool-Conv-BN-Pool-Dropout-Dense,
35k parameters, as in the Keras examples), trained from scratch on a
stratified subset of Fashion-MNIST's training split (`--images`, seed 2)
and tested on the official 10,000-image test split. Needs
/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import numpy as np

_common = runpy.run_path(str(Path(__file__).with_name("common.py")))
FASHION = "/usr/share/datasets/fashion-mnist"


def subset(path, images, seed=2):
    from zoo.data import _arrays
    a = _arrays("fashion_mnist", FASHION)
    rng = np.random.default_rng(seed)
    per_class = images // 10
    keep = np.concatenate([rng.permutation(np.flatnonzero(a.y_train == c))[:per_class]
                           for c in range(10)])
    np.savez(path, x_train=a.x_train[keep], y_train=a.y_train[keep],
             x_test=a.x_test, y_test=a.y_test)


def user_cnn():
    import keras
    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.MaxPooling2D(),
        layers.Dropout(0.5),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])


def train(source, path):
    """Trains the CNN as the Keras examples do (Adam, 40 epochs, batch 32)."""
    import keras
    from zoo import data as data_lib
    data = data_lib.load(source, batch_size=32, validation_split=0.1)
    model = user_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.train, validation_data=data.val, epochs=40, verbose=0)
    model.save(path)
    return keras.models.load_model(path).evaluate(data.test, verbose=0)[1]


# The table of docs/benchmarks.md, as printed here.
TABLE = ("| pruning budget | optimizer steps | test accuracy | change (points) | "
         "× smaller (gzip) |")


def markdown(result) -> str:
    lines = [f"Machine: {_common['machine_line'](result['machine'])}. Float model: "
             f"{result['float']:.4f}.", "", TABLE, "|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['prune_steps']:,} | {r['accuracy']:.4f} | "
              f"{r['change_points']:+.2f} | {r['gzip_x']:.1f}× |" for r in result["rows"]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--steps", default="100,300,3000",
                        help="pruning budgets of the curve (besides the default)")
    parser.add_argument("--out", default="runs/user_cnn")
    args = _common["parse"](parser, markdown)
    if args is None:
        return
    from compression import compress
    print(_common["machine"](), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    npz = out / f"fashion{args.images}.npz"
    if not npz.is_file():
        subset(npz, args.images)
    source, model = f"npz:{npz}", out / "user_cnn.keras"
    float_acc = train(source, model)
    print(f"float model: test accuracy {float_acc:.4f}", flush=True)
    rows = []
    for steps in [None, *map(int, args.steps.split(","))]:
        name = "default" if steps is None else f"`steps={steps}`"
        folder = out / ("default" if steps is None else f"steps{steps}")
        report = compress(str(model), source, out=folder, prune=0.8, steps=steps,
                          latency_runs=20)
        v = report["variants"][-1]
        rows.append({"run": name, "prune_steps": report["details"]["prune"]["schedule"]
                     ["total_steps"], "accuracy": v["accuracy"],
                     "change_points": 100 * (v["accuracy"] - float_acc),
                     "gzip_x": report["variants"][0]["gzip_bytes"] / v["gzip_bytes"],
                     "classifier_sparsity": report["details"]["prune"]["layers"].get(
                         "dense", 0.0)})
        print(rows[-1], flush=True)
    result = {"machine": _common["machine"](), "float": float_acc, "rows": rows}
    print(markdown(result))
    _common["dump"](args.json, result)

if __name__ == "__main__":
    main()
