"""Search spaces: knobs, conditions, files and the first trial (tuning.spaces)."""

import builtins
import math

import keras_tuner
import pytest
from hypothesis import given, settings, strategies as st

import zoo
from tuning import spaces
from tuning.hypermodel import ZooHyperModel
from tuning.search import search


def test_conditional_knobs_only_with_their_parent():
    space = spaces.resolve_space("resnet20", {"optimizer": {"value": "adam"}}, base="wide")
    hp = keras_tuner.HyperParameters()
    spaces.optimizer(hp, space)
    spaces.regularizer(hp, space)
    assert {"beta_1", "beta_2", "epsilon"} <= set(hp.values)
    assert "momentum" not in hp.values and "rho" not in hp.values
    assert "weight_decay" not in hp.values
    space = spaces.resolve_space("resnet20", {"optimizer": {"value": "nesterov"},
                                              "regularizer": {"value": "l2"}}, base="wide")
    hp = keras_tuner.HyperParameters()
    spaces.optimizer(hp, space)
    spaces.regularizer(hp, space)
    assert "momentum" in hp.values and "beta_1" not in hp.values
    assert "l2" in hp.values and "l1" not in hp.values


def test_a_sampled_zero_stays_zero():
    # momentum, rho and beta_1 of 0 are legal; `x or 0.9` used to turn them
    # into 0.9.
    for optimizer, knob, attribute in (("momentum", "momentum", "momentum"),
                                       ("rmsprop", "rho", "rho"),
                                       ("adam", "beta_1", "beta_1")):
        space = spaces.resolve_space("resnet20", {"optimizer": {"value": optimizer},
                                                  knob: {"value": 0.0}})
        built = spaces.optimizer(keras_tuner.HyperParameters(), space)
        assert float(getattr(built, attribute)) == 0.0, (optimizer, knob)


def test_architecture_knobs_build_other_variants():
    hm = ZooHyperModel("resnet20", 10, (8, 8, 1),
                       space={"depth": {"value": 32}, "optimizer": {"value": "adam"}})
    model = hm.build(keras_tuner.HyperParameters())
    assert model.name == "resnet32"
    hm = ZooHyperModel("mobilenet_v2_050_cifar", 10, (16, 16, 1),
                       space={"width_multiplier": {"value": 0.75}})
    narrow = hm.build(keras_tuner.HyperParameters())
    assert narrow.get_layer("Conv1").filters == 24


def test_space_file_errors(tmp_path):
    bad = tmp_path / "space.json"
    bad.write_text('{"optimizer": {"values": ["adam", "adamz"]}}')
    with pytest.raises(ValueError, match="Unknown optimizer value"):
        search("resnet20", "digits", out=tmp_path / "o", space=str(bad))
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        spaces.load_space(bad)


# The specification restated: what a number of each numeric knob may be.
NUMERIC = {
    "learning_rate": lambda v: v > 0, "epsilon": lambda v: v > 0,
    "momentum": lambda v: 0 <= v < 1, "rho": lambda v: 0 <= v < 1,
    "beta_1": lambda v: 0 <= v < 1, "beta_2": lambda v: 0 <= v < 1,
    "dropout": lambda v: 0 <= v < 1, "label_smoothing": lambda v: 0 <= v < 1,
    "weight_decay": lambda v: v >= 0, "l1": lambda v: v >= 0, "l2": lambda v: v >= 0,
    "batch_size": lambda v: v >= 1 and v == int(v), "depth": lambda v: v in (20, 32, 44, 56),
}


number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 300),
                   st.booleans(), st.text(max_size=3))


spec = st.one_of(
    st.none(), st.integers(),
    st.fixed_dictionaries({"values": st.lists(st.one_of(number, st.sampled_from(
        ["adam", "sgd", "l2", "cosine", "light", "lion"])), max_size=3)}),
    st.fixed_dictionaries({"value": number}),
    st.fixed_dictionaries({"min": number, "max": number},
                          optional={"sampling": st.sampled_from(["linear", "log", "cubic"]),
                                    "step": number}),
    st.dictionaries(st.sampled_from(["values", "min", "speed"]), number, max_size=2))


@settings(max_examples=150, deadline=None)
@given(knob=st.sampled_from(spaces.KNOBS[:16] + ("depth", "nonsense")), spec=spec)
def test_random_space_specs_give_space_or_value_error(knob, spec):
    try:
        space = spaces.resolve_space("resnet20", {knob: spec})
    except ValueError:
        return
    assert space[knob] == spec
    if spec is None or knob not in NUMERIC:
        return
    numbers = spec.get("values", []) + [spec[k] for k in ("value", "min", "max")
                                        if k in spec]
    for v in numbers:
        assert isinstance(v, (int, float)) and not isinstance(v, bool), (knob, v)
        assert math.isfinite(v) and NUMERIC[knob](v), (knob, v)
    # An accepted space builds: its first trial's optimizer and regularizer.
    hp = keras_tuner.HyperParameters()
    spaces.optimizer(hp, space)
    regularizer = spaces.regularizer(hp, space)
    if regularizer:
        zoo.factory.parse_regularizer(regularizer)


def test_yaml_space_without_pyyaml(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):
        if name == "yaml":
            raise ImportError("No module named 'yaml'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_yaml)
    space = tmp_path / "space.yaml"
    space.write_text("optimizer:\n  values: [adam]\n")
    with pytest.raises(ValueError, match=r"YAML space files need PyYAML \(pip install "
                                         r"pyyaml\); or write the space as JSON"):
        spaces.resolve_space("resnet20", space)


def test_the_focused_space_declares_every_knob_with_train_defaults_first():
    hm = ZooHyperModel("resnet20", 10, (8, 8, 1))
    hp = keras_tuner.HyperParameters()
    hm.build(hp)
    # Every focused knob is known to keras-tuner (a knob read only in `fit`
    # was never searched), and its first value is zoo train's default.
    assert hp.values == {"optimizer": "adam", "learning_rate": 3e-3,
                         "label_smoothing": 0.1,
                         "batch_size": 32, "schedule": "warmup_linear"}
    hp = keras_tuner.HyperParameters()
    hp.Fixed("optimizer", "adamw")
    hm.build(hp)
    assert math.isclose(hp.values["weight_decay"], 0.004)


def test_a_choice_of_ints_and_floats_is_one_of_floats_and_other_mixes_are_refused():
    # JSON writes 0 for 0.0: keras-tuner's Choice would raise a TypeError.
    space = spaces.resolve_space("resnet20", {"label_smoothing": {"values": [0, 0.1]}})
    assert space["label_smoothing"]["values"] == [0.0, 0.1]
    assert all(isinstance(v, float) for v in space["label_smoothing"]["values"])
    spaces.sample(keras_tuner.HyperParameters(), "label_smoothing", space)
    # Whole numbers stay whole: a batch size of 64.0 is 64.
    space = spaces.resolve_space("resnet20", {"batch_size": {"values": [32, 64.0]}})
    assert space["batch_size"]["values"] == [32, 64]
    assert all(isinstance(v, int) for v in space["batch_size"]["values"])
    with pytest.raises(ValueError, match="mixes types"):
        spaces.resolve_space("resnet20", {"augment": {"values": ["light", 1]}})
