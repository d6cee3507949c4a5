"""Every registered model builds, runs, and round-trips through .keras."""

import re

import keras
import numpy as np
import pytest

import zoo
from zoo.errors import InputError
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


@pytest.mark.parametrize("zoo_call, keras_call", [
    # keras.applications calls, positional arguments included, with the zoo
    # function substituted: same parameters, output shape and name.
    (lambda: zoo.resnet50(False, None, None, (64, 64, 3), "avg", name="r"),
     lambda: keras.applications.ResNet50(False, None, None, (64, 64, 3), "avg",
                                         name="r")),
    (lambda: zoo.resnet50_v2(include_top=False, weights=None, name="v2"),
     lambda: keras.applications.ResNet50V2(include_top=False, weights=None,
                                           name="v2")),
    (lambda: zoo.mobilenet_v1_100((128, 128, 3), 0.5, 1, 0.2, name="m"),
     lambda: keras.applications.MobileNet((128, 128, 3), 0.5, 1, 0.2, weights=None,
                                          name="m")),
    (lambda: zoo.mobilenet_v2_100((96, 96, 3), 0.75, False, None, pooling="max",
                                  name="m2"),
     lambda: keras.applications.MobileNetV2((96, 96, 3), 0.75, False, None,
                                            pooling="max", name="m2")),
    (lambda: zoo.xception(True, None, None, (71, 71, 3), None, 7, None, "x"),
     lambda: keras.applications.Xception(True, None, None, (71, 71, 3), None, 7,
                                         None, "x")),
])
def test_keras_applications_calls_work_unchanged(zoo_call, keras_call):
    ours, theirs = zoo_call(), keras_call()
    assert ours.count_params() == theirs.count_params()
    assert ours.output_shape == theirs.output_shape
    assert ours.name == theirs.name


def test_keras_applications_refusals_and_alias_conflicts():
    with pytest.raises(InputError, match="classes should be 1000"):
        zoo.resnet50(weights="imagenet", classes=10)     # before any download
    with pytest.raises(InputError, match="depth_multiplier=2"):
        zoo.mobilenet_v1_100(depth_multiplier=2)
    with pytest.raises(TypeError, match="both 'alpha' and 'width_multiplier'"):
        zoo.mobilenet_v2_100(alpha=0.5, width_multiplier=0.5)
    with pytest.raises(TypeError, match="has no depth_multiplier"):
        zoo.resnet50(depth_multiplier=1)
    with pytest.raises(TypeError, match="at most 8 positional"):
        zoo.resnet20(*range(9))


def test_headless_default_input_is_any_size():
    assert zoo.resnet50(include_top=False).output_shape == (None, None, None, 2048)
    assert zoo.create_model("xception", include_top=False).input_shape == \
        (None, None, None, 3)
    assert zoo.resnet50().input_shape == (None, 224, 224, 3)


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2_050", "xception"])
def test_headless_feature_shapes(name):
    shape = small_input(name)
    features = zoo.create_model(name, include_top=False, input_shape=shape)
    assert len(features.output_shape) == 4
    pooled = zoo.create_model(name, include_top=False, pooling="max",
                              input_shape=shape)
    assert pooled.output_shape == (None, features.output_shape[-1])


def test_no_lambda_layers_anywhere():
    for name in ["resnet20", "resnext29_8x64d", "mobilenet_v1_025", "alexnet_cifar"]:
        model = zoo.create_model(name, input_shape=small_input(name))
        assert not any(isinstance(l, keras.layers.Lambda) for l in model.layers)


def test_resnext_uses_grouped_convolution():
    model = zoo.create_model("resnext29_8x64d", input_shape=(32, 32, 3))
    grouped = [l for l in model.layers
               if isinstance(l, keras.layers.Conv2D) and l.groups == 8]
    assert len(grouped) == 9          # one 3×3 per block, 3 stages × 3 blocks


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


def test_mobilenet_v2_has_no_dropout_like_keras_applications():
    # The v1 default (1e-3) used to leak into v2 as an extra `top_dropout`.
    v2 = zoo.create_model("mobilenet_v2_100", input_shape=(32, 32, 3))
    reference = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3))
    dropouts = [layer for layer in v2.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [] and len(v2.layers) == len(reference.layers)
    v1 = zoo.create_model("mobilenet_v1_100", input_shape=(32, 32, 3))
    assert [l.rate for l in v1.layers if isinstance(l, keras.layers.Dropout)] == [1e-3]


KERAS_AUTO_NAME = re.compile(r"^(input_layer|add|conv2d|batch_normalization|max_pooling2d"
                             r"|global_(average|max)_pooling2d)(_\d+)?$")
# What the zoo calls the layers keras.applications leaves to Keras' automatic
# naming (README, first bullet).
ZOO_STABLE_NAME = re.compile(r"^(input|avg_pool|max_pool|block\d+_(add|residual_conv"
                             r"|residual_bn)|conv\d_block\d+_0_pool)$")


@pytest.mark.parametrize("name, application", [
    ("resnet50", "ResNet50"), ("resnet50_v2", "ResNet50V2"),
    ("mobilenet_v1_100", "MobileNet"), ("mobilenet_v2_100", "MobileNetV2"),
    ("xception", "Xception")])
@pytest.mark.parametrize("include_top, pooling", [(True, None), (False, "avg")])
def test_same_layers_and_names_as_keras_applications(name, application, include_top,
                                                     pooling):
    ours = zoo.create_model(name, include_top=include_top, pooling=pooling)
    theirs = getattr(keras.applications, application)(
        weights=None, include_top=include_top, pooling=pooling)
    assert [type(l).__name__ for l in ours.layers] == \
        [type(l).__name__ for l in theirs.layers]
    for mine, other in zip(ours.layers, theirs.layers):
        if KERAS_AUTO_NAME.match(other.name):
            assert ZOO_STABLE_NAME.match(mine.name), (mine.name, other.name)
        else:
            assert mine.name == other.name
