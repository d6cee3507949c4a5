"""Every bad argument is a ValueError that says what to do, raised before
any layer is built."""

import keras
import pytest
from hypothesis import given, settings, strategies as st

import zoo
from zoo import factory

CASES = [
    (dict(name="resnet5"), "Did you mean: resnet50, resnet56"),
    (dict(name="resnet50", input_shape=(16, 16, 3)),
     r"resnet50 needs inputs of at least 32×32; got \(16, 16, 3\)"),
    (dict(name="xception", input_shape=(64, 64, 3)), "at least 71×71"),
    (dict(name="resnet20", input_shape=(32, 32)), r"\(height, width, channels\)"),
    (dict(name="resnet20", input_shape=(32, 32, 0)), "channels must be a positive"),
    (dict(name="resnet20", input_shape=(32, 32, None)), "known number of channels"),
    (dict(name="alexnet_cifar", input_shape=(None, None, 3)), "must be known"),
    (dict(name="resnet20", pooling="mean"), "pooling must be 'avg', 'max' or None"),
    (dict(name="resnet20", classifier_activation="softmaxx"),
     "Unknown classifier_activation 'softmaxx'"),
    (dict(name="resnet20", regularizer="l3"), "Unknown regularizer 'l3'"),
    (dict(name="resnet20", regularizer="l2:abc"), "strengths must be numbers"),
    (dict(name="resnet20", regularizer="elastic_net:1e-4"), "two strengths"),
    (dict(name="resnet20", regularizer="l2:-1"), "must be a finite number >= 0"),
    (dict(name="resnet20", num_classes=0), "num_classes must be an integer >= 1"),
    (dict(name="resnet20", num_classes=2.5), "num_classes must be an integer >= 1"),
    (dict(name="resnet20", classes=10, num_classes=5), "disagree"),
    (dict(name="resnet20", dropout_rate=1.0), r"dropout_rate must be a number in \[0, 1\)"),
    (dict(name="resnet20", dropout_rate=-0.1), "dropout_rate"),
    (dict(name="resnet20", drop_path_rate=2), "drop_path_rate"),
    (dict(name="mobilenet_v2_100", drop_path_rate=0.1), "residual families"),
    (dict(name="resnet20", width_multiplier=0.5), "has no width multiplier"),
    (dict(name="mobilenet_v2_100", width_multiplier=0), r"width_multiplier must be"),
    (dict(name="resnet20", include_top="yes"), "include_top must be True or False"),
    (dict(name="resnet20", kernel_initializer="nope"), "Unknown kernel_initializer"),
    (dict(name="resnet20", input_tensor=[1, 2, 3]), "symbolic Keras tensor"),
    (dict(name="resnet20", weights="imagenet-ish"), "Unknown weights .imagenet-ish. for resnet20"),
]


@pytest.mark.parametrize("kwargs,message", CASES,
                         ids=[f"{i}-{c[1][:30]}" for i, c in enumerate(CASES)])
def test_bad_argument_raises_clear_error(kwargs, message, monkeypatch):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")

    def no_building(*args, **kw):
        raise AssertionError("a layer was built before validation finished")
    monkeypatch.setattr(factory, "build", no_building)
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **kwargs)


def test_input_tensor_and_shape_must_agree():
    tensor = keras.Input((32, 32, 3))
    with pytest.raises(ValueError, match=r"does not match input_tensor's shape \(32, 32, 3\)"):
        zoo.create_model("resnet20", input_tensor=tensor, input_shape=(40, 40, 3))


def test_non_string_name_is_a_type_error():
    with pytest.raises(TypeError, match="Model name must be a string"):
        zoo.create_model(50)


@settings(max_examples=60, deadline=None)
@given(num_classes=st.one_of(st.integers(-5, 5), st.floats(-2, 2), st.none(),
                             st.booleans()),
       dropout=st.one_of(st.floats(-1, 2), st.just(float("nan")), st.integers(-1, 2)),
       pooling=st.sampled_from([None, "avg", "max", "min", "", 3]),
       size=st.integers(1, 40))
def test_validation_accepts_exactly_the_valid_arguments(num_classes, dropout,
                                                        pooling, size):
    valid = ((num_classes is None or (isinstance(num_classes, int)
                                      and not isinstance(num_classes, bool)
                                      and num_classes >= 1))
             and 0 <= dropout < 1
             and pooling in (None, "avg", "max")
             and size >= 8)
    try:
        factory.validate("resnet20", num_classes=num_classes, dropout_rate=dropout,
                         pooling=pooling, input_shape=(size, size, 3))
    except ValueError:
        assert not valid
    else:
        assert valid


def test_channels_first_is_refused_not_built_wrong():
    # Under channels_first the builders used to read 224 as the channel
    # count (24,174,744 parameters for resnet50 instead of 23,587,712).
    import keras
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match="zoo models are built channels_last.*"
                                             "set_image_data_format"):
            zoo.resnet50(include_top=False, pooling="avg")
    finally:
        keras.config.set_image_data_format(previous)
    assert zoo.create_model("resnet20", input_shape=(8, 8, 1)).output_shape == (None, 10)


def test_create_model_options_are_the_factorys_each_documented_once():
    # create_model passes build options through to zoo.factory.validate:
    # its help lists each one (from validate's docstring) and a misspelt one
    # is refused with the closest name, before anything is built.
    for name in zoo.factory.OPTIONS:
        assert f"\n            {name}: " in zoo.create_model.__doc__, name
    with pytest.raises(TypeError, match="unknown option 'num_clases'. Did you mean: "
                                        "num_classes"):
        zoo.create_model("resnet20", num_clases=3)
    model = zoo.create_model("resnet20", num_classes=3, input_shape=(16, 16, 3),
                             dropout_rate=0.25)
    assert model.zoo_options["dropout_rate"] == 0.25 and model.output_shape == (None, 3)
