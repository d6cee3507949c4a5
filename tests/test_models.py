"""Every registered model builds, runs, and round-trips through .keras."""


import keras
import numpy as np
import pytest

import zoo
from helpers import small_input


@pytest.mark.parametrize("name", zoo.list_models())
def test_builds_runs_and_round_trips(name, tmp_path, rng):
    shape = small_input(name)
    model = zoo.create_model(name, num_classes=3, input_shape=shape)
    assert isinstance(model, keras.Model)
    assert model.name == name
    x = rng.random((2, *shape), dtype=np.float32)
    y = model(x, training=False).numpy()
    assert y.shape == (2, 3)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), y,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2_050", "xception"])
def test_headless_feature_shapes(name):
    shape = small_input(name)
    features = zoo.create_model(name, include_top=False, input_shape=shape)
    assert len(features.output_shape) == 4
    pooled = zoo.create_model(name, include_top=False, pooling="max",
                              input_shape=shape)
    assert pooled.output_shape == (None, features.output_shape[-1])


