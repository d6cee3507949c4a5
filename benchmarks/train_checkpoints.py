"""Trains the shipped Fashion-MNIST checkpoints with the public CLI and
writes them, with their model cards, into zoo/weights/.

    apt-get install -y dataset-fashion-mnist
    python benchmarks/train_checkpoints.py [--only resnet20] [--skip-train]

For each recipe: `zoo train ...` into runs/<arch>_fashion_mnist, then the
best model's weights are stored as float16 (`<arch>.fashion_mnist.weights.h5`,
halving the package size), reloaded through `zoo.create_model(arch,
weights=...)` and evaluated on the official 10,000-image test split.  The
model card (accuracy, command, sha256, date) goes into zoo/weights/cards.json,
which the registry reads.  Prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = "/usr/share/datasets/fashion-mnist"
COMMON = ["--dataset", "fashion_mnist", "--data-dir", DATA_DIR,
          "--batch-size", "128", "--optimizer", "adam", "--schedule", "cosine",
          "--augment", "natural"]
RECIPES = {
    "resnet20": ["--epochs", "12", "--lr", "2e-3"],
    "mobilenet_v2_050_cifar": ["--epochs", "6", "--lr", "2e-3"],
    "alexnet_cifar": ["--epochs", "6", "--lr", "1e-3"],
}


def command(arch):
    return ["zoo", "train", arch, *COMMON, *RECIPES[arch],
            "--out", f"runs/{arch}_fashion_mnist"]


def export_float16(arch, model_path, target):
    import keras
    import zoo
    from zoo.io import atomic_path
    trained = keras.models.load_model(model_path, safe_mode=True)
    keras.mixed_precision.set_global_policy("float16")
    try:
        half = zoo.create_model(arch, num_classes=trained.output_shape[-1],
                                input_shape=trained.input_shape[1:])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    half.set_weights([w.astype("float16") for w in trained.get_weights()])
    with atomic_path(target) as tmp:
        half.save_weights(tmp)
    return trained


def evaluate_shipped(arch, path, input_shape, num_classes):
    import numpy as np
    import zoo
    from zoo import data as data_lib
    model = zoo.create_model(arch, weights=str(path), num_classes=num_classes,
                             input_shape=input_shape)
    data = data_lib.load("fashion_mnist", data_dir=DATA_DIR, batch_size=500,
                         validation_split=0.0, image_size=input_shape[:2],
                         channels=input_shape[2])
    correct = total = 0
    for x, y in data.test:
        p = model.predict(x, verbose=0).argmax(-1)
        correct += int((p == np.asarray(y)).sum())
        total += len(y)
    return correct / total, total, int(model.count_params())


# The table of docs/benchmarks.md, as printed here (from the model cards,
# zoo/weights/cards.json, which this script writes).
TABLE = ("| checkpoint | test accuracy (official 10k test split, float16 file) | "
         "epochs | train time | file |")


def markdown(cards) -> str:
    lines = [TABLE, "|---|---|---|---|---|"]
    for name, card in cards.items():
        m = card["metrics"]
        size = (ROOT / "zoo" / "weights" / card["file"]).stat().st_size
        lines.append(f"| {name} | {m['test_accuracy']:.4f} | {m['epochs']} | "
                     f"{m['train_wall_time_s']:,.0f} s | {size / 1e6:.2f} MB |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES))
    parser.add_argument("--skip-train", action="store_true",
                        help="reuse runs/ from an earlier run")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table of the shipped checkpoints' cards and exit")
    args = parser.parse_args()
    cards_path = ROOT / "zoo" / "weights" / "cards.json"
    if args.markdown:
        print(markdown(json.loads(cards_path.read_text())))
        return 0
    os.chdir(ROOT)
    from zoo import weights as weights_lib
    from zoo.io import write_json
    cards = json.loads(cards_path.read_text()) if cards_path.exists() else {}
    for arch in args.only or RECIPES:
        cmd = command(arch)
        if not args.skip_train:
            subprocess.run(cmd, check=True)
        run = ROOT / f"runs/{arch}_fashion_mnist"
        metrics = json.loads((run / "metrics.json").read_text())
        target = ROOT / "zoo" / "weights" / f"{arch}.fashion_mnist.weights.h5"
        trained = export_float16(arch, run / "model.keras", target)
        shape = tuple(trained.input_shape[1:])
        accuracy, n, params = evaluate_shipped(arch, target, shape,
                                               trained.output_shape[-1])
        cards[f"{arch}.fashion_mnist"] = {
            "arch": arch, "tag": "fashion_mnist", "file": target.name,
            "sha256": weights_lib.sha256(target),
            "num_classes": int(trained.output_shape[-1]),
            "input_shape": list(shape), "preprocessing": "unit",
            "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist IDX files)",
            "split": "trained on 54,000 of the 60,000 training images "
                     "(seeded 10 % validation hold-out); evaluated on the "
                     "official 10,000-image test split",
            "metrics": {"test_accuracy": round(accuracy, 4),
                        "test_accuracy_float32": round(metrics["test_accuracy"], 4),
                        "epochs": metrics["epochs"],
                        "train_wall_time_s": metrics["wall_time_s"]},
            "num_params": params,
            "command": shlex.join(cmd),
            "date": datetime.date.today().isoformat(),
            "class_names": metrics["dataset"]["class_names"],
        }
        write_json(cards_path, cards)
    print(markdown(cards))

if __name__ == "__main__":
    sys.exit(main())
