"""Size, sparsity, accuracy and latency of each compressed variant."""

from __future__ import annotations

import gzip
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from zoo.io import atomic_path, write_json, write_text


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def keras_bytes(model) -> bytes:
    """The model's .keras file without optimizer state (what is deployed)."""
    import keras
    if getattr(model, "optimizer", None) is not None:
        bare = keras.models.clone_model(model)
        bare.set_weights(model.get_weights())
        model = bare
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def weight_stats(model) -> dict:
    """Parameters, non-zero parameters and sparsity of the kernels."""
    total = int(model.count_params())
    kernels = [np.asarray(w) for layer in model.layers
               for w in layer.weights if w.name.endswith("kernel")]
    k_total = sum(k.size for k in kernels)
    k_zero = sum(int((k == 0).sum()) for k in kernels)
    return {"params": total, "nonzero_params": total - k_zero,
            "sparsity": k_zero / k_total if k_total else 0.0}


def accuracy(predict, data, limit=None):
    """Test-split accuracy of a batch predict function."""
    correct = total = 0
    for x, y in data.test:
        p = np.asarray(predict(np.asarray(x))).argmax(-1)
        correct += int((p == np.asarray(y)).sum())
        total += len(y)
        if limit and total >= limit:
            break
    return correct / max(total, 1)


def keras_accuracy(model, data, limit=None):
    return accuracy(model.predict_on_batch, data, limit)


def tflite_accuracy(tflite, data, limit=None):
    return accuracy(tflite.predict, data, limit)


def median_latency_ms(fn, sample, runs=50, warmup=5):
    for _ in range(warmup):
        fn(sample)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(sample)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def keras_variant(name, model, data, *, runs=50, limit=None):
    blob = keras_bytes(model)
    sample = np.asarray(next(iter(data.test))[0][:1])
    return {"name": name, "format": "keras",
            "accuracy": keras_accuracy(model, data, limit),
            "size_bytes": len(blob), "gzip_bytes": gzip_size(blob),
            **weight_stats(model),
            "latency_ms": median_latency_ms(model.predict_on_batch, sample, runs)}


def tflite_variant(name, blob: bytes, data, *, sparsity, nonzero, params, runs=50,
                   limit=None):
    from zoo.inference import TFLiteModel
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(blob)
        lite = TFLiteModel(path, num_threads=None)
        sample = np.asarray(next(iter(data.test))[0][:1])
        accuracy = tflite_accuracy(lite, data, limit)
        single = TFLiteModel(path)
        latency = median_latency_ms(single.predict, sample, runs)
    return {"name": name, "format": "tflite", "accuracy": accuracy,
            "size_bytes": len(blob), "gzip_bytes": gzip_size(blob),
            "params": params, "nonzero_params": nonzero, "sparsity": sparsity,
            "latency_ms": latency}


def write_report(out, variants, extra=None):
    """report.json, report.md and report.png in `out`."""
    out = Path(out)
    write_json(out / "report.json", {"variants": variants, **(extra or {})})
    base = variants[0]
    lines = ["| variant | format | accuracy | size | gzip size | × smaller (gzip) | "
             "sparsity | latency (batch 1) |",
             "|---|---|---|---|---|---|---|---|"]
    for v in variants:
        lines.append(
            f"| {v['name']} | {v['format']} | {v['accuracy']:.4f} | "
            f"{v['size_bytes'] / 1e3:,.0f} kB | {v['gzip_bytes'] / 1e3:,.0f} kB | "
            f"{base['gzip_bytes'] / v['gzip_bytes']:.1f}× | {v['sparsity']:.1%} | "
            f"{v['latency_ms']:.2f} ms |")
    write_text(out / "report.md", "# Compression report\n\n" + "\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [v["name"] for v in variants]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, label in ((axes[0], "gzip_bytes", "gzip size (kB)"),
                           (axes[1], "accuracy", "accuracy"),
                           (axes[2], "latency_ms", "latency, batch 1 (ms)")):
        values = [v[key] / (1e3 if key == "gzip_bytes" else 1) for v in variants]
        ax.bar(names, values, color="#4c72b0")
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    with atomic_path(out / "report.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
