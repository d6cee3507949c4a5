"""Exports checked against the Keras model (issue #14): SavedModel, LiteRT
and ONNX, each run back with its own runtime."""

import importlib.util
import json
import math

import numpy as np
import pytest

import zoo
from zoo import export


def _peaked(seed):
    """A MobileNetV2 with random weights that give clearly different class
    probabilities: a freshly initialised one outputs 0.1 ± 1e-6 everywhere,
    which any two models match to 1e-4."""
    model = zoo.create_model("mobilenet_v2_050_cifar", num_classes=10,
                             input_shape=(32, 32, 3))
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape, name = tuple(w.shape), w.path
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("gamma"):
            value = rng.normal(1.0, 0.2, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = np.prod(shape[:2]) if "depthwise" in name else np.prod(shape[:-1])
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        w.assign(value.astype("float32"))
    return model


@pytest.fixture(scope="module")
def model():
    return _peaked(0)


@pytest.mark.slow
def test_every_format_matches_keras_within_tolerance(model, tmp_path):
    results = export.export(model, tmp_path, ["saved_model", "tflite", "onnx"],
                            verbose=False)
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.tflite").is_file()
    for fmt, r in results.items():
        assert r["ok"], (fmt, r)
        assert not math.isnan(r["max_abs_diff"]) and r["max_abs_diff"] <= export.TOLERANCE
        assert r["top1_agreement"] == 1.0
    saved = json.loads((tmp_path / "equivalence.json").read_text())
    assert saved["formats"]["onnx"]["max_abs_diff"] == results["onnx"]["max_abs_diff"]
    # The ONNX file really is the model: onnxruntime on other images agrees
    # with Keras on them too.
    import onnxruntime
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    x = np.random.default_rng(5).random((3, 32, 32, 3), dtype=np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict_on_batch(x), atol=1e-4)


def test_the_check_fails_on_a_different_model(model):
    x = export.sample_batch(model)
    expected = model.predict_on_batch(x)
    other = _peaked(1)
    assert np.ptp(expected, axis=-1).min() > 0.01      # not a flat output
    result = export.compare(expected, other.predict_on_batch(x))
    assert not result["ok"] and result["max_abs_diff"] > export.TOLERANCE
    assert not export.compare(expected, expected[:, :5])["ok"]
    nan = np.full_like(expected, np.nan)
    assert not export.compare(expected, nan)["ok"]


def test_missing_exporter_and_unknown_format_are_refused(monkeypatch, tmp_path):
    with pytest.raises(export.ExportError, match="Unknown export format.*'?pdf"):
        export.check_formats("tflite,pdf", "tensorflow")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(export.ExportError,
                       match=r'needs tf2onnx.*pip install "cnn-zoo\[onnx\]"'):
        export.check_formats("onnx", "tensorflow")
    with pytest.raises(export.ExportError, match="TensorFlow backend only"):
        export.check_formats("saved_model,tflite", "jax")
    assert export.check_formats("saved_model", "jax") == ["saved_model"]
