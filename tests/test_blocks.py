"""The blocks families are made of (zoo.blocks): grouped convolutions,
stochastic depth and zero-initialised residual branches, no Lambda layers."""

import keras
import numpy as np
import pytest

import zoo
from helpers import small_input


def test_no_lambda_layers_anywhere():
    for name in ["resnet20", "resnext29_8x64d", "mobilenet_v1_025", "alexnet_cifar"]:
        model = zoo.create_model(name, input_shape=small_input(name))
        assert not any(isinstance(l, keras.layers.Lambda) for l in model.layers)


def test_resnext_uses_grouped_convolution():
    model = zoo.create_model("resnext29_8x64d", input_shape=(32, 32, 3))
    grouped = [l for l in model.layers
               if isinstance(l, keras.layers.Conv2D) and l.groups == 8]
    assert len(grouped) == 9          # one 3×3 per block, 3 stages × 3 blocks


def test_drop_path_and_zero_init(rng):
    model = zoo.create_model("resnet20", drop_path_rate=0.2, zero_init_last_bn=True)
    drops = [l for l in model.layers if l.name.endswith("_drop_path")]
    # Linear schedule: 0 for the first block (no layer), 0.2 for the last.
    assert len(drops) == 8
    assert drops[-1].rate == pytest.approx(0.2)
    assert drops[0].rate == pytest.approx(0.2 / 8)
    gamma = model.get_layer("conv2_block1_2_bn").gamma.numpy()
    assert np.all(gamma == 0)
    # With zero-initialised residual branches every block is an identity
    # (plus ReLU), so inference is deterministic and finite.
    x = rng.random((2, 32, 32, 3), dtype=np.float32)
    assert np.isfinite(model(x, training=False).numpy()).all()
