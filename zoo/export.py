"""Deployment exports a user can check: a Keras 3 model written as a
TensorFlow SavedModel, a LiteRT `.tflite` file and an ONNX file (all through
Keras 3's `model.export`), each run back with its own runtime on the same
batch as the Keras model and compared.

* SavedModel: reloaded with `tf.saved_model.load`, its `serve` signature.
* LiteRT: run with `ai_edge_litert`'s interpreter (zoo.inference.TFLiteModel).
* ONNX: written by tf2onnx (Keras 3's `format="onnx"` on the TensorFlow
  backend), run with onnxruntime. Optional: `pip install "cnn-zoo[onnx]"`.

The check: largest absolute difference of the outputs (class
probabilities) and top-1 agreement; a format passes at `tolerance`
(default 1e-4). `equivalence.json` in the export folder records it.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

from zoo.errors import InputError
from zoo.io import atomic_path, check_writable_dir, write_json

FORMATS = ("saved_model", "tflite", "onnx")
FILES = {"saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
TOLERANCE = 1e-4
# format -> (modules it needs, the extra that installs them)
NEEDS = {"onnx": (("tf2onnx", "onnxruntime"), "onnx"),
         "tflite": (("ai_edge_litert",), None)}


class ExportError(InputError):
    """A format that cannot be exported here (backend, missing package)."""


def check_tolerance(tolerance) -> float:
    """A finite number >= 0: the largest output difference a format may show."""
    import numbers
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) \
            or not math.isfinite(tolerance) or tolerance < 0:
        raise ExportError(f"tolerance must be a number >= 0 (the largest absolute "
                          f"output difference allowed); got {tolerance!r}.")
    return float(tolerance)


def check_formats(formats, backend: str) -> list:
    """The formats, checked before any work: known, their packages
    installed, and LiteRT/ONNX on the TensorFlow backend."""
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    bad = sorted(set(formats) - set(FORMATS))
    if bad or not formats:
        raise ExportError(f"Unknown export format(s) {', '.join(bad) or '(none)'}; "
                          f"use any of {', '.join(FORMATS)}.")
    for fmt in formats:
        modules, extra = NEEDS.get(fmt, ((), None))
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            hint = (f'pip install "cnn-zoo[{extra}]"' if extra else
                    f"pip install {' '.join(missing)}")
            raise ExportError(f"Exporting {fmt} needs {', '.join(missing)}, which is "
                              f"not installed: {hint}")
        if fmt in ("tflite", "onnx") and backend != "tensorflow":
            raise ExportError(f"{fmt} export runs on the TensorFlow backend only; this "
                              f"process runs Keras on {backend}. Rerun with --backend "
                              "tensorflow (the .keras file is the same on every "
                              "backend).")
    return list(dict.fromkeys(formats))


def sample_batch(model, batch=None, size=8, seed=0):
    """The batch every format is checked on: `batch` (real images), or
    `size` seeded uniform images in [0, 1) of the model's input shape."""
    if batch is not None:
        return np.asarray(batch, np.float32)
    shape = tuple(model.input_shape[1:])
    if any(d is None for d in shape):
        raise ExportError(f"{model.name} has a variable input shape {shape}; give a "
                          "batch of images to check the exports on.")
    return np.random.default_rng(seed).random((size, *shape), dtype=np.float32)


def _run_saved_model(path, x):
    import tensorflow as tf
    loaded = tf.saved_model.load(str(path))     # kept alive while `serve` runs
    return np.asarray(loaded.serve(tf.constant(x)))


def _run_tflite(path, x):
    from zoo.inference import TFLiteModel
    return TFLiteModel(path).predict(x)


def _run_onnx(path, x):
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


_KERAS_FORMAT = {"saved_model": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}
_RUN = {"saved_model": _run_saved_model, "tflite": _run_tflite, "onnx": _run_onnx}


def compare(expected, got, tolerance=TOLERANCE) -> dict:
    """Largest absolute difference and top-1 agreement of two output batches."""
    expected, got = np.asarray(expected, np.float64), np.asarray(got, np.float64)
    if expected.shape != got.shape:
        return {"max_abs_diff": math.inf, "top1_agreement": 0.0, "ok": False,
                "problem": f"output shape {got.shape}, Keras {expected.shape}"}
    diff = float(np.abs(expected - got).max())
    agree = float((expected.argmax(-1) == got.argmax(-1)).mean())
    return {"max_abs_diff": diff, "top1_agreement": agree,
            "ok": bool(diff <= tolerance and not math.isnan(diff))}


def export(model, out, formats=("saved_model", "tflite"), *, batch=None,
           tolerance=TOLERANCE, verbose=True) -> dict:
    """Writes each format into `out` and checks it against the Keras model.

    Returns:
        {format: {"file", "max_abs_diff", "top1_agreement", "ok"}}, also
        written to `out/equivalence.json`.

    Example:
        >>> zoo.export.export(model, "deploy", ["tflite", "onnx"])["onnx"]["ok"]
        True
    """
    import keras
    formats = check_formats(formats, keras.backend.backend())
    tolerance = check_tolerance(tolerance)
    out = check_writable_dir(out)
    x = sample_batch(model, batch)
    expected = np.asarray(model.predict_on_batch(x))   # also builds the model
    results = {}
    for fmt in formats:
        path = out / FILES[fmt]
        with atomic_path(path) as tmp:
            model.export(str(tmp), format=_KERAS_FORMAT[fmt], verbose=False)
        results[fmt] = {"file": str(path), **compare(expected, _RUN[fmt](path, x),
                                                      tolerance)}
        if verbose:
            r = results[fmt]
            print(f"wrote {path}: max |Δ| vs Keras {r['max_abs_diff']:.2e} on "
                  f"{len(x)} images, top-1 agreement {r['top1_agreement']:.0%} "
                  f"({'ok' if r['ok'] else 'FAILED'}, tolerance {tolerance:g})")
    write_json(out / "equivalence.json", {"tolerance": tolerance, "images": len(x),
                                          "formats": results})
    return results
