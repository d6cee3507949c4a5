"""Writes tests/data/fashion_mnist_test_1000.npz: a stratified slice of the
official Fashion-MNIST test split (100 images of each class, drawn with a
seeded generator), on which the tests evaluate the shipped checkpoints.

    python benchmarks/fashion_slice.py [--data-dir /usr/share/datasets/fashion-mnist]

Needs the IDX files (Debian: apt-get install dataset-fashion-mnist).
Fashion-MNIST is © 2017 Zalando SE, MIT licence (tests/data/FASHION_MNIST_LICENSE).
Prints each shipped checkpoint's accuracy on the slice beside its card's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "fashion_mnist_test_1000.npz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    from zoo.data import _arrays
    a = _arrays("fashion_mnist", args.data_dir)
    rng = np.random.default_rng(2026)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(a.y_test == c))[:100]
                                   for c in range(10)]))
    np.savez_compressed(OUT, x=a.x_test[keep], y=a.y_test[keep].astype(np.uint8),
                        test_index=keep.astype(np.int32))
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
    import zoo
    from zoo import registry
    for name in registry.list_models(pretrained=True):
        for tag, spec in registry.get_entry(name).weights.items():
            model = zoo.create_model(name, weights=tag)
            pred = model.predict(a.x_test[keep].astype("float32")[..., None] / 255.0,
                                 verbose=0).argmax(-1)
            acc = float((pred == a.y_test[keep]).mean())
            print(f"{name}.{tag}: slice {acc:.4f}, card {spec.metrics['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
