"""Search spaces: small functions of `hp` with conditional knobs.

A space is a dict of knobs; each knob is one of

* ``{"values": [...]}``                    – a choice,
* ``{"min": a, "max": b, "sampling": "log"|"linear"}`` – a range,
* ``{"value": x}``                          – fixed (not searched),
* ``None``                                  – dropped (the zoo default is used).

Knobs (`KNOBS`; conditional ones exist only where they apply, e.g. momentum
for momentum/nesterov, weight_decay for adamw) and the architecture knobs
that families declare next to their models (`ModelEntry.search`:
width_multiplier, depth, cardinality).

Two default spaces (`SPACES`): "focused" (the default) searches Adam/AdamW
around their known-good learning rates, AdamW's weight decay and label
smoothing — what a few hundred steps can tell apart; it does not search
augmentation (short trials rank it last though it wins over a long run):
every trial trains with the recipe's, as the final retraining does; "wide" is
every knob over broad ranges (docs/tuning.md measures one against the other).

A knob's default (its "default" field, else `zoo train`'s default when the
knob can take it) is what keras-tuner's first trial uses, so every search
scores `zoo train`'s own configuration first.

Users fix, narrow or drop knobs from Python (`space={"optimizer": {"values":
["adam"]}}`) or from a JSON/YAML file (`load_space(path)`); what they give is
merged over the focused space (or over the wide one: `base="wide"`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from zoo import augment, registry
from zoo.training import (DEFAULT_LR, OPTIMIZERS, SCHEDULES, TrainConfig, make_optimizer,
                          make_schedule)
from zoo.errors import InputError, require

REGULARIZERS = ("none", "l1", "l2", "elastic_net")
AUGMENTS = tuple(augment.PRESETS)
TRAINING_KNOBS = ("optimizer", "learning_rate", "momentum", "rho", "beta_1", "beta_2",
                  "epsilon", "weight_decay", "schedule", "regularizer", "l1", "l2",
                  "dropout", "label_smoothing", "augment", "batch_size")
# The families' own knobs, in registry order (width_multiplier, depth, ...).
ARCHITECTURE_KNOBS = tuple(dict.fromkeys(
    knob for entry in registry.entries().values() for knob in entry.search
    if knob not in TRAINING_KNOBS))
KNOBS = TRAINING_KNOBS + ARCHITECTURE_KNOBS
_CHOICES = {"optimizer": OPTIMIZERS, "regularizer": REGULARIZERS,
            "augment": AUGMENTS, "schedule": SCHEDULES}
SPACES = ("focused", "wide")

# `zoo train`'s defaults (read from zoo.training.TrainConfig and its
# recipe), the first trial of every search; where TrainConfig leaves a knob
# to Keras (None), Keras' own default; weight_decay is Keras AdamW's.
_CONFIG = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
TRAIN_DEFAULTS = {
    "optimizer": _CONFIG["optimizer"], "learning_rate": DEFAULT_LR[_CONFIG["optimizer"]],
    "momentum": 0.9, "rho": 0.9, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
    "weight_decay": 0.004, "schedule": _CONFIG["schedule"], "regularizer": "none",
    "dropout": 0.0, "label_smoothing": _CONFIG["label_smoothing"],
    "augment": TrainConfig("resnet20").augmentation, "batch_size": _CONFIG["batch_size"],
}

FOCUSED = {
    "optimizer": {"values": ["adam", "adamw"]},
    "learning_rate": {"min": 3e-4, "max": 1e-2, "sampling": "log"},
    "weight_decay": {"min": 1e-4, "max": 1e-1, "sampling": "log"},
    "schedule": {"value": _CONFIG["schedule"]},
    "label_smoothing": {"values": [0.0, 0.1]},
    "batch_size": {"value": TrainConfig("resnet20").batch_size},
}

BASE = {
    "optimizer": {"values": list(OPTIMIZERS)},
    "learning_rate": {"min": 1e-4, "max": 1e-1, "sampling": "log"},
    "momentum": {"min": 0.5, "max": 0.99},
    "rho": {"min": 0.8, "max": 0.99},
    "beta_1": {"min": 0.8, "max": 0.95},
    "beta_2": {"values": [0.99, 0.999]},
    "epsilon": {"min": 1e-8, "max": 1e-5, "sampling": "log"},
    "weight_decay": {"min": 1e-5, "max": 1e-2, "sampling": "log"},
    "schedule": {"values": ["warmup_linear", "warmup_cosine", "cosine", "constant"]},
    "regularizer": {"values": list(REGULARIZERS)},
    "l1": {"min": 1e-6, "max": 1e-3, "sampling": "log"},
    "l2": {"min": 1e-6, "max": 1e-2, "sampling": "log"},
    "dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
    "label_smoothing": {"values": [0.0, 0.1]},
    "augment": {"values": ["none", "light", "light_erasing"]},
    "batch_size": {"values": [32, 64, 128]},
}


def _unit(v):
    return 0 <= v < 1


# What each numeric knob accepts: (test, wording for the error message).
DOMAINS = {
    "learning_rate": (lambda v: v > 0, "> 0"),
    "epsilon": (lambda v: v > 0, "> 0"),
    "width_multiplier": (lambda v: v > 0, "> 0"),
    **{knob: (_unit, "in [0, 1)") for knob in ("momentum", "rho", "beta_1", "beta_2",
                                               "dropout", "label_smoothing")},
    **{knob: (lambda v: v >= 0, ">= 0") for knob in ("weight_decay", "l1", "l2")},
    "batch_size": (lambda v: v >= 1 and float(v).is_integer(), "a whole number >= 1"),
}


def default_space(model_name: str, kind: str = "focused") -> dict:
    """The focused or wide default space of a model (the wide one with the
    knobs its registry entry adds)."""
    entry = registry.get_entry(model_name)
    if kind not in SPACES:
        raise InputError(f"Unknown search space {kind!r}; use {' or '.join(SPACES)}, "
                         "or a space file.")
    if kind == "focused":
        return {k: dict(v) for k, v in FOCUSED.items()}
    space = {k: dict(v) for k, v in BASE.items()}
    for knob, spec in entry.search.items():
        space[knob] = {k: v for k, v in spec.items() if k != "models"}
    return space


def load_space(path) -> dict:
    """Reads a space from a JSON or YAML file (YAML needs PyYAML)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Space file {str(path)!r} does not exist.")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        yaml = require("yaml", "YAML space files need PyYAML (pip install pyyaml); "
                               "or write the space as JSON.")
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise InputError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a mapping of knob -> spec.")
    return data


def _check_knob(name, spec):
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise InputError(f"Knob {name!r}: expected a dict such as "
                         "{'values': [...]} or {'min': a, 'max': b}, or null; "
                         f"got {spec!r}.")
    unknown = set(spec) - {"values", "min", "max", "sampling", "step", "value",
                           "default"}
    if unknown:
        raise InputError(f"Knob {name!r} has unknown field(s) {sorted(unknown)}.")
    _check_numbers(name, spec)
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise InputError(f"Knob {name!r} has an empty choice list; give at least "
                             "one value or drop the knob (null).")
        if len({type(v) for v in values}) > 1 and not all(map(_is_number, values)):
            raise InputError(f"Knob {name!r} mixes types in {values}; a choice takes "
                             "one type (keras-tuner).")
        allowed = _CHOICES.get(name)
        if allowed:
            bad = [v for v in values if v not in allowed]
            if bad:
                raise InputError(f"Unknown {name} value(s) {bad} in the space; use "
                                 f"{', '.join(map(str, allowed))}.")
    elif "value" in spec:
        allowed = _CHOICES.get(name)
        if allowed and spec["value"] not in allowed:
            raise InputError(f"Unknown {name} {spec['value']!r}; use "
                             f"{', '.join(allowed)}.")
    elif "min" in spec or "max" in spec:
        lo, hi = spec.get("min"), spec.get("max")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (lo, hi)):
            raise InputError(f"Knob {name!r} needs numeric min and max; got "
                             f"{lo!r}, {hi!r}.")
        if lo > hi:
            raise InputError(f"Knob {name!r}: min {lo} > max {hi}.")
        sampling = spec.get("sampling", "linear")
        if sampling not in ("linear", "log", "reverse_log"):
            raise InputError(f"Knob {name!r}: unknown sampling {sampling!r}.")
        if sampling == "log" and lo <= 0:
            raise InputError(f"Knob {name!r}: log sampling needs min > 0; got {lo}.")
    else:
        raise InputError(f"Knob {name!r} needs 'values', 'min'/'max' or 'value'.")


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_numbers(name, spec):
    """Every number a numeric knob can take lies in that knob's domain."""
    if name not in DOMAINS:
        return
    test, wording = DOMAINS[name]
    numbers = list(spec["values"]) if isinstance(spec.get("values"), list) else []
    numbers += [spec[k] for k in ("value", "min", "max") if k in spec]
    bad = [v for v in numbers if not _is_number(v) or not test(v)]
    if bad:
        raise InputError(f"Knob {name!r} must be {wording}; got {bad[0]!r}.")
    step = spec.get("step")
    if step is not None and (not _is_number(step) or step <= 0):
        raise InputError(f"Knob {name!r}: step must be a number > 0; got {step!r}.")


def _check_default(name, spec):
    """A knob's "default" must be one of its values or inside its range."""
    if spec is None or "default" not in spec:
        return
    d = spec["default"]
    inside = d in spec["values"] if "values" in spec else (
        d == spec["value"] if "value" in spec else
        _is_number(d) and spec["min"] <= d <= spec["max"])
    if not inside:
        raise InputError(f"Knob {name!r}: default {d!r} is not among its values "
                         "or inside its range.")


def resolve_space(model_name: str, space=None, base: str = "focused") -> dict:
    """Merges a user space (dict, file path, or "focused"/"wide") over the
    `base` default space; validates."""
    if isinstance(space, str) and space in SPACES:
        base, space = space, None
    elif isinstance(space, (str, Path)):
        space = load_space(space)
    merged = default_space(model_name, base)
    for name, spec in (space or {}).items():
        if name not in KNOBS:
            raise InputError(f"Unknown search knob {name!r}; knobs: {', '.join(KNOBS)}.")
        merged[name] = spec
    for name, spec in merged.items():
        _check_knob(name, spec)
        _check_default(name, spec)
        if spec and len({type(v) for v in spec.get("values", [])}) > 1:  # one type
            one = int if all(float(v).is_integer() for v in spec["values"]) else float
            merged[name] = {**spec, "values": [one(v) for v in spec["values"]]}
    _check_architecture(model_name, merged)
    return merged


def _having(knob) -> str:
    """The models whose entries declare `knob`: whole families by name."""
    entries = registry.entries().values()
    names = []
    for e in entries:
        family = [x for x in entries if x.family == e.family]
        whole = all(knob in x.search for x in family)
        if knob in e.search:
            names.append(f"the {e.family} family" if whole else e.name)
    return ", ".join(dict.fromkeys(names))


def _check_architecture(model_name, space):
    """Architecture knobs only for models whose entry declares them; a knob
    that picks a model takes only the values it has models for."""
    entry = registry.get_entry(model_name)
    for knob in ARCHITECTURE_KNOBS:
        spec = space.get(knob)
        if not spec:
            continue
        own = entry.search.get(knob)
        if own is None:
            raise InputError(f"{knob} is a knob of {_having(knob)}; "
                             f"{model_name} has none.")
        models = own.get("models")
        if models is None:
            continue
        if "values" not in spec and "value" not in spec:
            raise InputError(f"Knob {knob!r} picks a model: give 'values' or 'value' "
                             f"(one of {', '.join(map(str, models))}).")
        given = spec.get("values", []) + ([spec["value"]] if "value" in spec else [])
        bad = [v for v in given if not _is_number(v) or v not in models]
        if bad:
            raise InputError(f"Knob {knob!r} must be one of "
                             f"{', '.join(map(str, models))}; got {bad[0]!r}.")


def sample(hp, name, space, default=None, parent=None):
    """Declares knob `name` on `hp` (inside a conditional scope when `parent`
    is (parent name, [values])) and returns its value."""
    spec = space.get(name)
    if spec is None:
        return default
    first = first_value(name, spec)

    def declare():
        if "value" in spec:
            return hp.Fixed(name, spec["value"])
        if "values" in spec:
            return hp.Choice(name, spec["values"], default=first)
        lo, hi = spec["min"], spec["max"]
        if isinstance(lo, int) and isinstance(hi, int) and "step" in spec \
                and isinstance(spec["step"], int):
            return hp.Int(name, lo, hi, step=spec["step"],
                          default=None if first is None else int(first))
        if lo == hi:
            return hp.Fixed(name, lo)
        kwargs = {"sampling": spec.get("sampling", "linear"), "default": first}
        if "step" in spec:
            kwargs["step"] = spec["step"]
        return hp.Float(name, float(lo), float(hi), **kwargs)
    if parent is None:
        return declare()
    parent_name, parent_values = parent
    if parent_name not in hp.values:
        return default          # the parent knob was dropped from the space
    with hp.conditional_scope(parent_name, list(parent_values)):
        value = declare()
    return value if hp.is_active(name) else default


def first_value(name, spec):
    """The value keras-tuner's first trial gives knob `name`: its "default",
    else `zoo train`'s default when the knob can take it, else None
    (keras-tuner's own: the first value, or the minimum)."""
    if "default" in spec:
        return spec["default"]
    d = TRAIN_DEFAULTS.get(name)
    if d is None:
        return None
    if "values" in spec:
        return d if d in spec["values"] else None
    if "min" in spec and spec["min"] <= d <= spec["max"]:
        step = spec.get("step")
        on_grid = not step or math.isclose((d - spec["min"]) / step,
                                           round((d - spec["min"]) / step))
        return d if on_grid else None
    return None


def optimizer(hp, space, total_steps=100, warmup_steps=0):
    """The sampled optimizer with its learning-rate schedule over
    `total_steps`; its knobs exist only where they mean something."""
    name = sample(hp, "optimizer", space, default="adam")
    lr = sample(hp, "learning_rate", space, default=DEFAULT_LR[name])
    momentum = sample(hp, "momentum", space, 0.9,
                      parent=("optimizer", ["momentum", "nesterov"]))
    rho = sample(hp, "rho", space, 0.9, parent=("optimizer", ["rmsprop"]))
    adam_like = ("optimizer", ["adam", "adamw"])
    beta_1 = sample(hp, "beta_1", space, 0.9, parent=adam_like)
    beta_2 = sample(hp, "beta_2", space, 0.999, parent=adam_like)
    epsilon = sample(hp, "epsilon", space, 1e-7, parent=adam_like)
    weight_decay = sample(hp, "weight_decay", space, 0.0,
                          parent=("optimizer", ["adamw"]))
    schedule = sample(hp, "schedule", space, default=TRAIN_DEFAULTS["schedule"])
    rate = make_schedule(schedule, lr, total_steps, warmup_steps)
    # Inactive knobs come back as their defaults; 0 is a legal value.
    return make_optimizer(name, rate, weight_decay=weight_decay, momentum=momentum,
                          rho=rho, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


def regularizer(hp, space):
    """"l2:3e-4"-style string for zoo.create_model, or None."""
    kind = sample(hp, "regularizer", space, default="none")
    l1 = sample(hp, "l1", space, 1e-5, parent=("regularizer", ["l1", "elastic_net"]))
    l2 = sample(hp, "l2", space, 1e-4, parent=("regularizer", ["l2", "elastic_net"]))
    if kind in (None, "none"):
        return None
    if kind == "l1":
        return f"l1:{l1}"
    if kind == "l2":
        return f"l2:{l2}"
    return f"elastic_net:{l1},{l2}"


def architecture(hp, model_name, space):
    """(registry name, extra create_model kwargs) after architecture knobs."""
    values = {knob: sample(hp, knob, space) for knob in ARCHITECTURE_KNOBS}
    return model_for(model_name, values)


def model_for(model_name, values):
    """(registry name, extra create_model kwargs) for architecture knob
    values: a knob with "models" picks that model, the others are options."""
    name, kwargs = model_name, {}
    for knob, spec in registry.get_entry(model_name).search.items():
        value = values.get(knob)
        if knob in TRAINING_KNOBS or value is None:
            continue
        if "models" in spec:
            name = spec["models"][int(value)]
        else:
            kwargs[knob] = value
    return name, kwargs


__all__ = ["ARCHITECTURE_KNOBS", "AUGMENTS", "BASE", "FOCUSED", "KNOBS", "REGULARIZERS",
           "SCHEDULES", "SPACES", "TRAINING_KNOBS", "TRAIN_DEFAULTS", "architecture",
           "default_space", "first_value", "load_space", "model_for", "optimizer",
           "regularizer", "resolve_space", "sample"]
