"""The per-model functions and keras.applications compatibility
(zoo.applications): the same calls, layers and names as keras.applications."""

import re

import keras
import pytest

import zoo
from zoo.errors import InputError


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
