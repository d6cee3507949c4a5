"""Size, sparsity, accuracy and latency of each compressed variant.

Sizes (bytes of the file as written, and under two general-purpose coders):

* `size_bytes`: the file (.keras without optimizer state, or .tflite).
* `gzip_bytes`: gzip level 9 (DEFLATE: LZ77 + Huffman), what a download or
  an app package applies; it counts runs of zeros but barely profits from
  weight sharing.
* `xz_bytes`: xz/LZMA2 (Python's lzma, preset 9 extreme): a stronger
  entropy coder that approaches what Deep Compression counts for sparse,
  clustered weights (zeros and a few shared int8 values cost a few bits).
"""

from __future__ import annotations

import gzip
import lzma
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from zoo.io import atomic_path, write_json, write_text


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def xz_size(data: bytes) -> int:
    return len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def sizes(blob: bytes) -> dict:
    return {"size_bytes": len(blob), "gzip_bytes": gzip_size(blob),
            "xz_bytes": xz_size(blob)}


KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _layer_of(tensor_name: str) -> str:
    """The Keras layer a converted kernel came from: "model/quant_conv1/Conv2D;…"
    → "conv1" (QAT layers carry a "quant_" prefix)."""
    parts = tensor_name.split(";")[0].split("/")
    name = parts[1] if len(parts) > 2 else parts[0]
    return name.removeprefix("quant_")


def tflite_kernels(blob: bytes) -> list:
    """The weight tensors of a LiteRT file, read back from the file itself:
    for each convolution / fully-connected kernel its shape, type, fraction
    of zeros and number of distinct values (overall and, for per-channel
    int8 kernels, the most in any one output channel)."""
    from ai_edge_litert.interpreter import Interpreter
    from zoo.startup import native_stderr_hidden
    with native_stderr_hidden():
        interpreter = Interpreter(model_content=blob)
        interpreter.allocate_tensors()
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    kernels = []
    # Private LiteRT API (the ops and their input tensors), checked on
    # ai-edge-litert 2.3.0 (tests/test_private_apis.py).
    for op in interpreter._get_ops_details():
        if op["op_name"] not in KERNEL_OPS or len(op["inputs"]) < 2:
            continue
        t = details[op["inputs"][1]]
        k = np.asarray(interpreter.get_tensor(t["index"]))
        axis = t["quantization_parameters"].get("quantized_dimension", 0)
        channels = np.moveaxis(k, axis, 0).reshape(k.shape[axis], -1) if k.ndim else k
        kernels.append({"name": t["name"], "layer": _layer_of(t["name"]),
                        "op": op["op_name"], "shape": list(k.shape),
                        "dtype": str(k.dtype), "sparsity": float((k == 0).mean()),
                        "unique": int(np.unique(k).size),
                        "unique_per_channel": int(max(np.unique(c).size
                                                      for c in channels))})
    return kernels


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
            "accuracy": keras_accuracy(model, data, limit), **sizes(blob),
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
    return {"name": name, "format": "tflite", "accuracy": accuracy, **sizes(blob),
            "params": params, "nonzero_params": nonzero, "sparsity": sparsity,
            "latency_ms": latency}


def pareto(variants, size_key="gzip_bytes") -> list:
    """Indices of the variants no other variant beats on both accuracy and
    size (as small or smaller and as accurate or more, one of them strictly)."""
    def beaten(v):
        return any(w[size_key] <= v[size_key] and w["accuracy"] >= v["accuracy"]
                   and (w[size_key] < v[size_key] or w["accuracy"] > v["accuracy"])
                   for w in variants)
    return [i for i, v in enumerate(variants) if not beaten(v)]


def markdown_table(variants) -> str:
    """Every variant with its sizes, the factors against the first one, and
    whether it is on the accuracy/gzip-size Pareto front."""
    base, front = variants[0], set(pareto(variants))
    lines = ["| variant | format | accuracy | size | gzip | xz | × smaller (gzip) | "
             "× smaller (xz) | sparsity | latency (batch 1) | Pareto |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, v in enumerate(variants):
        lines.append(
            f"| {v['name']} | {v['format']} | {v['accuracy']:.4f} | "
            f"{v['size_bytes'] / 1e3:,.1f} kB | {v['gzip_bytes'] / 1e3:,.1f} kB | "
            f"{v['xz_bytes'] / 1e3:,.1f} kB | "
            f"{base['gzip_bytes'] / v['gzip_bytes']:.1f}× | "
            f"{base['xz_bytes'] / v['xz_bytes']:.1f}× | {v['sparsity']:.1%} | "
            f"{v['latency_ms']:.2f} ms | {'✔' if i in front else ''} |")
    return "\n".join(lines)


def plot(path, variants, title=""):
    """Accuracy against gzip size (log scale) of every variant, the Pareto
    front joined and marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    kb = [v["gzip_bytes"] / 1e3 for v in variants]
    acc = [v["accuracy"] for v in variants]
    ax.scatter(kb, acc, color="#999999", label="variant")
    front = sorted(pareto(variants), key=lambda i: kb[i])
    ax.plot([kb[i] for i in front], [acc[i] for i in front], "o-", color="#c44e52",
            label="Pareto front")
    for i, v in enumerate(variants):
        ax.annotate(v["name"], (kb[i], acc[i]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("gzip size (kB, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "accuracy against compressed size")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def write_report(out, variants, extra=None):
    """report.json, report.md (the table) and report.png (the plot) in `out`."""
    out = Path(out)
    write_json(out / "report.json", {"variants": variants, **(extra or {})})
    text = ("# Compression report\n\n"
            "Sizes: the file, gzip -9 and xz -9e of it (compression.report); "
            "factors against the first row.\n\n" + markdown_table(variants) + "\n")
    write_text(out / "report.md", text)
    plot(out / "report.png", variants)
