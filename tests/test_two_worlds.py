"""One definition, two Keras worlds, every backend."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import subprocess_env
from zoo import factory

ONE_PER_FAMILY = ["alexnet_cifar", "mobilenet_v2_050", "mobilenet_v1_025",
                  "xception", "resnet20", "resnet50_v2", "resnext29_8x64d"]


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_tf_keras_twin_has_same_weights_and_outputs(name, rng):
    tf_keras = pytest.importorskip("tf_keras")
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


def test_every_family_runs_under_jax_backend():
    pytest.importorskip("jax")
    code = (
        "import json, numpy as np, keras, zoo\n"
        "out = {'backend': keras.backend.backend()}\n"
        f"for name in {ONE_PER_FAMILY!r}:\n"
        "    size = 71 if name == 'xception' else 32\n"
        "    m = zoo.create_model(name, num_classes=4, input_shape=(size, size, 3))\n"
        "    y = m.predict(np.ones((2, size, size, 3), 'float32'), verbose=0)\n"
        "    out[name] = list(y.shape)\n"
        "print(json.dumps(out))\n")
    env = subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", code], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out.pop("backend") == "jax"
    assert out == {name: [2, 4] for name in ONE_PER_FAMILY}
