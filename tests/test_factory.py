"""Build options of create_model (zoo.factory): input shapes and tensors,
regularizers, initializers, drop path, width, precision."""

import keras
import numpy as np
import pytest

import zoo


def test_headless_default_input_is_any_size():
    assert zoo.resnet50(include_top=False).output_shape == (None, None, None, 2048)
    assert zoo.create_model("xception", include_top=False).input_shape == \
        (None, None, None, 3)
    assert zoo.resnet50().input_shape == (None, 224, 224, 3)


def test_unknown_spatial_size_for_fully_convolutional_models(rng):
    model = zoo.create_model("resnet20", input_shape=(None, None, 1))
    for size in (32, 40):
        assert model(rng.random((1, size, size, 1), dtype=np.float32)).shape == (1, 10)


def test_input_tensor_is_used_as_input():
    tensor = keras.Input((32, 32, 3))
    model = zoo.create_model("resnet20", input_tensor=tensor)
    assert model.inputs[0] is tensor


def test_regularizer_adds_losses_at_construction():
    plain = zoo.create_model("resnet20")
    assert not plain.losses
    l2 = zoo.create_model("resnet20", regularizer="l2:1e-3")
    convs_and_dense = [l for l in l2.layers
                       if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(l2.losses) == len(convs_and_dense)
    elastic = zoo.create_model("resnet20", regularizer="elastic_net:1e-5,1e-4")
    conv = elastic.get_layer("conv1_conv")
    assert isinstance(conv.kernel_regularizer, keras.regularizers.L1L2)
    assert float(conv.kernel_regularizer.l1) == pytest.approx(1e-5)
    custom = zoo.create_model("resnet20", regularizer=keras.regularizers.L1(2e-4))
    assert float(custom.get_layer("predictions").kernel_regularizer.l1) == pytest.approx(2e-4)


def test_width_multiplier_overrides_alpha():
    narrow = zoo.create_model("mobilenet_v1_100", width_multiplier=0.25,
                              input_shape=(32, 32, 3))
    reference = zoo.create_model("mobilenet_v1_025", input_shape=(32, 32, 3))
    assert narrow.count_params() == reference.count_params()


def test_kernel_initializer_default_is_he_normal():
    model = zoo.create_model("resnet20")
    init = model.get_layer("conv1_conv").kernel_initializer
    assert type(init).__name__ == "HeNormal"
    model = zoo.create_model("resnet20", kernel_initializer="glorot_uniform")
    assert type(model.get_layer("conv1_conv").kernel_initializer).__name__ == "GlorotUniform"


def test_mixed_precision_keeps_float32_outputs(rng):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = zoo.create_model("resnet20", num_classes=4)
        y = model(rng.random((1, 32, 32, 3), dtype=np.float32))
        assert str(y.dtype) == "<dtype: 'float32'>" or "float32" in str(y.dtype)
    finally:
        keras.mixed_precision.set_global_policy("float32")
