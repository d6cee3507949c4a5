"""One definition, two Keras worlds, every backend."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import NARROW_RESNEXT, narrow_resnext, one_per_family, subprocess_env
from zoo import factory, registry

ONE_PER_LAYOUT = one_per_family(by_layout=True)
FAMILIES = one_per_family()


@pytest.mark.parametrize("name", ONE_PER_LAYOUT)
def test_tf_keras_twin_has_same_weights_and_outputs(name, rng):
    import tf_keras
    size = 71 if name == "xception" else 32
    entry, options = factory.validate(name, num_classes=5,
                                      input_shape=(size, size, 3),
                                      regularizer="l2")
    model = factory.build(entry, options)
    twin = factory.build(entry, options, tf_keras)
    assert isinstance(twin, tf_keras.Model)
    assert [w.shape for w in model.weights] == [tuple(w.shape) for w in twin.weights]
    assert [l.name for l in model.layers][1:] == [l.name for l in twin.layers][1:]
    twin.set_weights(model.get_weights())
    x = rng.random((2, size, size, 3), dtype=np.float32)
    np.testing.assert_allclose(twin(x, training=False).numpy(),
                               model(x, training=False).numpy(), atol=1e-5)
    assert len(twin.losses) == len(model.losses) > 0


def _size(name):
    """Small inputs, still large enough that BatchNormalization's batch
    statistics are taken over more than one value per image in the last
    stage (where they reduce to 1 × 1 the step's loss is ill-conditioned
    and float rounding shows at 1e-4): 16 × 16 for the CIFAR forms (8 × 8
    networks' last stage is 2 × 2 or more), 64 × 64 for the ImageNet ones."""
    entry = registry.get_entry(name)
    return max(entry.min_size, 16 if entry.default_size <= 32 else 64)


def _outputs(args):
    """Logits and the loss of one training step of each model, from its
    saved weights, on this process's Keras backend."""
    import keras
    import zoo
    if NARROW_RESNEXT in args["names"]:
        narrow_resnext()                # the JAX process registers it too
    data = np.load(args["inputs"])
    out = {"backend": keras.backend.backend()}
    for name in args["names"]:
        size = args["sizes"][name]
        m = zoo.create_model(name, num_classes=5, input_shape=(size, size, 3),
                             dropout_rate=0.0, classifier_activation=None)
        m.load_weights(args["folder"] + f"/{name}.weights.h5")
        x, y = data[name + "_x"], data[name + "_y"]
        logits = np.asarray(m(x, training=False))
        m.compile(keras.optimizers.SGD(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        out[name] = {"logits": logits.tolist(),
                     "step_loss": float(m.train_on_batch(x, y))}
    return out


_IN_JAX = ("import json, sys\n"
           "sys.path.insert(0, sys.argv[2])\n"
           "import keras\n"
           "from test_two_worlds import _outputs\n"
           "print(json.dumps(_outputs(json.loads(sys.argv[1]))))\n")


@pytest.mark.slow
def test_same_weights_same_outputs_and_training_step_under_tf_and_jax(
        tmp_path, rng, monkeypatch):
    # One model per family: the same weights give the same logits under
    # TensorFlow and JAX (relative error <= 1e-4), and a training step from
    # the same state computes the same loss (<= 1e-4; BatchNormalization in
    # training mode, with batch statistics). What the step then changes is
    # compared in docs/distributed.md ("Backends"). ResNeXt by its builder at
    # a sixteenth of ResNeXt-29's widths (helpers.narrow_resnext): the same
    # grouped convolutions without 34 M parameters to build and run on both backends.
    import jax  # noqa: F401  (a required test dependency: missing fails, not skips)
    import zoo
    names = [narrow_resnext(monkeypatch) if registry.get_entry(n).family == "resnext"
             else n for n in FAMILIES]
    assert NARROW_RESNEXT in names
    arrays = {}
    for name in names:
        size = _size(name)
        m = zoo.create_model(name, num_classes=5, input_shape=(size, size, 3),
                             dropout_rate=0.0, classifier_activation=None)
        m.save_weights(tmp_path / f"{name}.weights.h5")
        arrays[name + "_x"] = rng.random((8, size, size, 3), dtype=np.float32)
        arrays[name + "_y"] = rng.integers(0, 5, 8)
    np.savez(tmp_path / "inputs.npz", **arrays)
    args = {"names": names, "folder": str(tmp_path),
            "inputs": str(tmp_path / "inputs.npz"),
            "sizes": {name: _size(name) for name in names}}
    done = subprocess.run([sys.executable, "-c", _IN_JAX, json.dumps(args),
                           os.path.dirname(__file__)],
                          env=subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {"tensorflow": _outputs(args),     # this process runs TensorFlow
               "jax": json.loads(done.stdout.strip().splitlines()[-1])}
    assert results["tensorflow"].pop("backend") == "tensorflow"
    assert results["jax"].pop("backend") == "jax"
    for name in names:
        tf_out, jax_out = results["tensorflow"][name], results["jax"][name]
        a, b = np.array(tf_out["logits"]), np.array(jax_out["logits"])
        assert a.shape == (8, 5) and np.isfinite(a).all() and np.isfinite(b).all()
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max(), name
        la, lb = tf_out["step_loss"], jax_out["step_loss"]
        assert np.isfinite(la) and abs(la - lb) <= 1e-4 * abs(la), (name, la, lb)
        # Training mode is what was compared: its loss differs from the
        # inference-mode cross-entropy of the same weights.
        y = np.load(tmp_path / "inputs.npz")[name + "_y"]
        shifted = a - a.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        assert abs(la - float(-log_p[np.arange(len(y)), y].mean())) > 1e-3, name
