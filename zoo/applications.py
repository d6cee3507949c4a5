"""The per-model functions (`zoo.resnet50(...)`, `zoo.mobilenet_v2_100(...)`):
drop-ins for keras.applications' constructors.

They take `create_model`'s keyword arguments and, so that code written for
keras.applications runs unchanged, keras.applications' own:

* positional arguments in keras.applications' order: MobileNet
  ``(input_shape, alpha, depth_multiplier, dropout, include_top, weights,
  input_tensor, pooling, classes, classifier_activation, name)``,
  MobileNetV2 the same without ``depth_multiplier`` and ``dropout`` (the
  families declare them: `ModelEntry.keras_signature`), every other family ``(include_top, weights, input_tensor, input_shape, pooling,
  classes, classifier_activation, name)``;
* ``name`` = ``model_name``, ``alpha`` = ``width_multiplier``, ``dropout`` =
  ``dropout_rate``, ``classes`` = ``num_classes``; ``depth_multiplier``
  (MobileNet v1) accepts 1, the only value keras.applications has weights
  for, and refuses others;
* keras.applications' refusal of ``weights="imagenet"`` with
  ``include_top=True`` and ``classes`` other than 1000 (`create_model` loads
  everything but the classifier in that case instead).

What differs, on purpose: ``weights`` defaults to None (random
initialisation; keras.applications defaults to "imagenet", a download).
"""

from __future__ import annotations

from zoo import registry
from zoo.errors import InputError, InputTypeError

COMMON_ORDER = ("include_top", "weights", "input_tensor", "input_shape", "pooling",
                "classes", "classifier_activation", "name")
ALIASES = {"name": "model_name", "alpha": "width_multiplier",
           "dropout": "dropout_rate"}


def positional_order(entry) -> tuple:
    """keras.applications' positional argument order for `entry`: the one its
    family declares (ModelEntry.keras_signature), else the common one."""
    return entry.keras_signature or COMMON_ORDER


def given_names(args, kwargs, order):
    return set(order[:len(args)]) | set(kwargs)


def keyword_arguments(entry, args, kwargs) -> dict:
    """`create_model` keyword arguments from a keras.applications-style call."""
    order = positional_order(entry)
    if len(args) > len(order):
        raise InputTypeError(f"{entry.name}() takes at most {len(order)} positional "
                             f"arguments ({', '.join(order)}); got {len(args)}.")
    given = dict(zip(order, args))
    both = sorted(set(given) & set(kwargs))
    if both:
        raise InputTypeError(f"{entry.name}() got {both[0]!r} both as a positional "
                             "and as a keyword argument.")
    given.update(kwargs)
    depth = given.pop("depth_multiplier", 1)
    if depth != 1:
        raise InputError(f"depth_multiplier={depth!r} is not supported: the zoo's "
                         "MobileNets (like keras.applications' weights) use 1; "
                         "use alpha / width_multiplier to change the width.")
    if "depth_multiplier" in given_names(args, kwargs, order) \
            and "depth_multiplier" not in order:
        raise InputTypeError(f"{entry.name}() has no depth_multiplier.")
    for alias, own in ALIASES.items():
        if alias in given:
            if own in given:
                raise InputTypeError(f"{entry.name}() got both {alias!r} and "
                                     f"{own!r}; they are the same argument.")
            given[own] = given.pop(alias)
    if given.get("weights") == "imagenet" and given.get("include_top", True) \
            and given.get("classes", given.get("num_classes", 1000)) not in (None, 1000):
        raise InputError('If using weights="imagenet" with include_top=True, classes '
                         "should be 1000 (as in keras.applications); use "
                         "include_top=False with your own head, or "
                         "zoo.create_model(..., num_classes=N), which loads "
                         "everything but the classifier.")
    return given


def model_function(model_name, create_model):
    """The function `zoo.<model_name>`, calling `create_model` (zoo's,
    passed in by the package, which this module sits below)."""
    entry = registry.get_entry(model_name)

    def build(*args, **kwargs):
        return create_model(model_name, **keyword_arguments(entry, args, kwargs))
    build.__name__ = model_name
    build.__qualname__ = model_name
    build.__doc__ = (f"Builds `{model_name}`: `zoo.create_model({model_name!r}, ...)`'s "
                     "keyword arguments, or keras.applications' (positional "
                     f"order: {', '.join(positional_order(entry))}; see "
                     f"zoo.applications).\n\nReference: {entry.reference}")
    return build
