"""Fine-tuning resnet20.fashion_mnist on scikit-learn digits with 10, 50 and
all labels per class, against training the same network from scratch.

    python benchmarks/fine_tune_digits.py [--json results.json]

Digits are resized to the checkpoint's 28×28×1 input; the test split is
zoo.data's fixed 360-image digits test split.  Fine-tuning: new 10-class
head, `zoo.fine_tune` (5 head epochs at lr 1e-2 with the backbone frozen,
then 10 epochs with every stage but the stem unfrozen, BatchNormalization
included, at lr 1e-3).  Scratch: 15 epochs of Adam at lr 1e-3.  Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def subset(x, y, per_class, seed=0):
    if per_class is None:
        return x, y
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class]
                           for c in np.unique(y)])
    return x[keep], y[keep]


def run(per_class, pretrained, folder, seed=0):
    import keras
    import zoo
    from zoo import data as data_lib
    from zoo.data import _digits
    xtr, ytr, xte, yte = _digits()
    xs, ys = subset(xtr, ytr, per_class, seed)
    path = Path(folder) / f"digits_{per_class}.npz"
    np.savez(path, x_train=xs, y_train=ys, x_test=xte, y_test=yte)
    d = data_lib.load(f"npz:{path}", image_size=28, batch_size=32,
                      validation_split=0.1 if per_class is None or per_class >= 20 else 0.0,
                      seed=seed)
    keras.utils.set_random_seed(seed)
    lr = 1e-3
    start = time.perf_counter()
    if pretrained:
        model = zoo.create_model("resnet20", weights="fashion_mnist", num_classes=10,
                                 input_shape=(28, 28, 1))
        zoo.fine_tune(model, d.train, d.val, head_epochs=5, epochs=10,
                      unfreeze_stages=3, learning_rate=10 * lr, train_bn=True)
    else:
        model = zoo.create_model("resnet20", num_classes=10, input_shape=(28, 28, 1))
        model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(d.train, validation_data=d.val, epochs=15, verbose=0)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    accuracy = model.evaluate(d.test, verbose=0)[1]
    return {"labels_per_class": per_class or "all", "train_images": len(ys),
            "method": "fine-tune resnet20.fashion_mnist" if pretrained else "from scratch",
            "test_accuracy": round(float(accuracy), 4),
            "wall_time_s": round(time.perf_counter() - start, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for per_class in (10, 50, None):
            for pretrained in (True, False):
                results.append(run(per_class, pretrained, folder))
                print(results[-1], flush=True)
    print("\n| labels per class | train images | method | test accuracy | time |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['labels_per_class']} | {r['train_images']} | {r['method']} | "
              f"{r['test_accuracy']:.4f} | {r['wall_time_s']:.0f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
