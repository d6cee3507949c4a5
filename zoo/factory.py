"""`create_model`: argument checking, then one call to the family's builder.

Every argument is validated here, before a single layer exists, so mistakes
end in a ValueError that says what to do instead of a TensorFlow traceback.
"""

from __future__ import annotations

import inspect
import math
import textwrap
import numbers
from dataclasses import dataclass
from typing import Any

import keras

from zoo import blocks, registry
from zoo.errors import InputError, InputTypeError, check_positive_int, did_you_mean

POOLINGS = (None, "avg", "max")
REGULARIZER_KINDS = ("l1", "l2", "elastic_net")
DEFAULT_STRENGTHS = {"l1": 1e-5, "l2": 1e-4}


@dataclass(frozen=True)
class BuildOptions:
    """Validated `create_model` arguments (everything but `weights`)."""

    num_classes: int
    include_top: bool
    input_shape: tuple
    input_tensor: Any
    pooling: str | None
    classifier_activation: Any
    dropout_rate: float
    regularizer: Any
    kernel_initializer: Any
    drop_path_rate: float
    zero_init_last_bn: bool
    width_multiplier: float | None
    name: str


def _check_rate(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 <= value < 1 or math.isnan(value):
        raise InputError(f"{what} must be a number in [0, 1); got {value!r}.")
    return float(value)


def _regularizer_dict(text):
    """"l2", "l2:5e-4" or "elastic_net:1e-5,1e-4" → {"kind": ..., strengths}."""
    kind, _, strengths = text.lower().partition(":")
    parts = [p for p in strengths.split(",") if p.strip()] if strengths else []
    try:
        numbers_ = [float(p) for p in parts]
    except ValueError:
        raise InputError(f"Regularizer strengths must be numbers; got {text!r} "
                         "(e.g. 'l2:1e-4' or 'elastic_net:1e-5,1e-4').") from None
    value = {"kind": kind}
    if kind == "elastic_net" and numbers_:
        if len(numbers_) != 2:
            raise InputError("elastic_net takes two strengths, 'l1,l2'; "
                             f"got {strengths!r}.")
        value.update(l1=numbers_[0], l2=numbers_[1])
    elif numbers_:
        if len(numbers_) != 1:
            raise InputError(f"{kind} takes one strength; got {strengths!r}.")
        value[kind] = numbers_[0]
    return value


def parse_regularizer(value, module=keras):
    """Turns a regularizer description into a regularizer of `module`.

    Args:
        value: None, "none", "l1", "l2", "elastic_net" (default strengths
            l1=1e-5, l2=1e-4), a string with strengths ("l2:5e-4",
            "elastic_net:1e-5,1e-4"), a dict ({"kind": "l2", "l2": 5e-4}) or
            a Keras regularizer instance.
        module: `keras` or `tf_keras`; the regularizer is made for it.

    Returns:
        A regularizer instance of `module`, or None.

    Example:
        >>> parse_regularizer("elastic_net:1e-5,1e-4")
        <keras.src.regularizers.regularizers.L1L2 object ...>
    """
    regs = module.regularizers
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, str):
        value = _regularizer_dict(value)
    if isinstance(value, dict):
        kind = str(value.get("kind", "")).lower()
        if kind not in REGULARIZER_KINDS:
            raise InputError(f"Unknown regularizer {kind!r}; use one of "
                             f"{', '.join(REGULARIZER_KINDS)}, None, or a Keras "
                             "regularizer instance.")
        l1 = float(value.get("l1", DEFAULT_STRENGTHS["l1"]))
        l2 = float(value.get("l2", DEFAULT_STRENGTHS["l2"]))
        for label, s in (("l1", l1), ("l2", l2)):
            if not s >= 0 or math.isinf(s):
                raise InputError(f"Regularizer strength {label} must be a finite "
                                 f"number >= 0; got {s!r}.")
        if kind == "l1":
            return regs.L1(l1)
        if kind == "l2":
            return regs.L2(l2)
        return regs.L1L2(l1=l1, l2=l2)
    if hasattr(value, "get_config") and callable(value):
        if isinstance(value, regs.Regularizer):
            return value
        # A regularizer of the other Keras world: rebuild it from its config.
        try:
            return regs.get({"class_name": type(value).__name__,
                             "config": value.get_config()})
        except Exception as err:
            raise InputError(f"Cannot use regularizer {value!r} with "
                             f"{module.__name__}: {err}") from None
    raise InputError(f"Unknown regularizer {value!r}; use one of "
                     f"{', '.join(REGULARIZER_KINDS)}, None, or a Keras "
                     "regularizer instance.")


def _check_activation(value):
    if value is None or callable(value):
        return value
    if not isinstance(value, str):
        raise InputError(f"classifier_activation must be None, a name or a "
                         f"callable; got {value!r}.")
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise InputError(f"Unknown classifier_activation {value!r}; use "
                         "'softmax', None (logits) or another keras.activations "
                         "name such as 'sigmoid'.") from None
    return value


def _check_initializer(value):
    if value is None:
        raise InputError("kernel_initializer cannot be None; the default is "
                         "'he_normal'.")
    if isinstance(value, str):
        try:
            keras.initializers.get(value)
        except (ValueError, TypeError):
            raise InputError(f"Unknown kernel_initializer {value!r}; use a "
                             "keras.initializers name such as 'he_normal'.") from None
    return value


def _check_input(entry, input_shape, input_tensor, include_top):
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise InputError("input_tensor must be a symbolic Keras tensor (from "
                             "keras.Input or a layer's output); got "
                             f"{type(input_tensor).__name__}.")
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != tensor_shape:
            raise InputError(f"input_shape {tuple(input_shape)} does not match "
                             f"input_tensor's shape {tensor_shape}; pass one "
                             "of them or make them agree.")
        input_shape = tensor_shape
    if input_shape is None:
        # As keras.applications: the reference size with the classifier,
        # any size (None × None) without it.
        input_shape = (entry.default_size, entry.default_size, 3) if include_top \
            else (None, None, 3)
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") \
            or len(input_shape) != 3:
        raise InputError(f"input_shape must be (height, width, channels); got "
                         f"{input_shape!r}.")
    h, w, c = input_shape
    for dim, label in ((h, "height"), (w, "width"), (c, "channels")):
        if dim is not None and (isinstance(dim, bool)
                                or not isinstance(dim, numbers.Integral)
                                or dim < 1):
            raise InputError(f"input_shape {label} must be a positive integer "
                             f"or None; got {dim!r} in {tuple(input_shape)}.")
    if c is None:
        raise InputError("input_shape needs a known number of channels; got "
                         f"{tuple(input_shape)}.")
    m = entry.min_size
    if any(d is not None and d < m for d in (h, w)):
        raise InputError(f"{entry.name} needs inputs of at least {m}×{m}; got "
                         f"{tuple(input_shape)}.")
    if include_top and entry.static_input_required and None in (h, w):
        raise InputError(f"{entry.name} with include_top=True flattens its "
                         "features, so height and width must be known; got "
                         f"{tuple(input_shape)}.")
    return tuple(int(d) if d is not None else None for d in input_shape)


# What each build option does (`help(zoo.create_model)` shows it); an option
# is declared by `validate`'s signature and described here.
OPTION_DOCS = """\
num_classes: classifier width (alias `classes`); defaults to the
    model's reference dataset (1000 for ImageNet models, 10 for CIFAR
    ones).
classes: keras.applications' name for num_classes.
include_top: keep the classifier (default True, False with
    features_only).
input_shape: (height, width, channels); defaults to the model's
    default size with 3 channels, or (None, None, 3) (any size, as
    keras.applications) with include_top=False.  Height/width may be
    None for fully convolutional families.
input_tensor: a Keras tensor to build the model on.
pooling: "avg", "max" or None, when include_top=False.
classifier_activation: "softmax", None (logits) or an activation name.
dropout_rate: dropout before the classifier (AlexNet: in front of each
    dense layer); defaults as in the reference implementation.
regularizer: "l1", "l2", "elastic_net", "l2:5e-4",
    "elastic_net:1e-5,1e-4", a dict or a Keras regularizer; applied
    at construction to convolution, pointwise and dense kernels.
kernel_initializer: initializer for convolution kernels.
drop_path_rate: stochastic-depth rate of the last residual block
    (resnet and resnext families; linear in depth).
zero_init_last_bn: initialise the last BN of each residual branch with
    gamma = 0.
width_multiplier: MobileNet's alpha, overriding the variant's.
model_name: the Keras model name (defaults to `name`).
"""


def validate(name, *, num_classes=None, classes=None, include_top=True,
             input_shape=None, input_tensor=None, pooling=None,
             classifier_activation="softmax", dropout_rate=None,
             regularizer=None, kernel_initializer="he_normal",
             drop_path_rate=0.0, zero_init_last_bn=False,
             width_multiplier=None, model_name=None):
    """Checks `create_model`'s build options (OPTION_DOCS says what each
    does); returns (entry, BuildOptions)."""
    entry = registry.get_entry(name)
    if keras.config.image_data_format() != "channels_last":
        # The builders read shapes as (h, w, c) and normalise axis -1: under
        # channels_first they would build a wrong model, so they refuse.
        raise InputError(
            f"zoo models are built channels_last, but Keras' image data format "
            f"is {keras.config.image_data_format()!r}. Call "
            "keras.config.set_image_data_format('channels_last') (or set "
            '"image_data_format": "channels_last" in ~/.keras/keras.json); '
            "transpose NCHW inputs with keras.ops.transpose(x, (0, 2, 3, 1)).")
    if classes is not None and num_classes is not None and classes != num_classes:
        raise InputError(f"classes={classes} and num_classes={num_classes} "
                         "disagree; pass only num_classes.")
    if num_classes is None:
        num_classes = classes if classes is not None else entry.default_classes
    check_positive_int(num_classes, "num_classes")
    if not isinstance(include_top, bool):
        raise InputError(f"include_top must be True or False; got {include_top!r}.")
    if pooling not in POOLINGS:
        raise InputError(f"pooling must be 'avg', 'max' or None; got {pooling!r}.")
    if dropout_rate is None:
        dropout_rate = entry.default_dropout    # the reference implementation's
    dropout_rate = _check_rate(dropout_rate, "dropout_rate")
    drop_path_rate = _check_rate(drop_path_rate, "drop_path_rate")
    if drop_path_rate and not entry.drop_path:
        families = sorted({e.family for e in registry.entries().values() if e.drop_path})
        raise InputError(f"drop_path_rate applies to residual families "
                         f"({', '.join(families)}); {entry.name} is {entry.family}.")
    if width_multiplier is not None:
        if entry.width_attr is None:
            raise InputError(f"{entry.name} has no width multiplier; the "
                             "mobilenet family has one.")
        if isinstance(width_multiplier, bool) \
                or not isinstance(width_multiplier, numbers.Real) \
                or not 0 < width_multiplier <= 4:
            raise InputError("width_multiplier must be a number in (0, 4]; got "
                             f"{width_multiplier!r}.")
        width_multiplier = float(width_multiplier)
    input_shape = _check_input(entry, input_shape, input_tensor, include_top)
    options = BuildOptions(
        num_classes=int(num_classes), include_top=include_top,
        input_shape=input_shape, input_tensor=input_tensor, pooling=pooling,
        classifier_activation=_check_activation(classifier_activation),
        dropout_rate=dropout_rate,
        regularizer=parse_regularizer(regularizer),
        kernel_initializer=_check_initializer(kernel_initializer),
        drop_path_rate=drop_path_rate, zero_init_last_bn=bool(zero_init_last_bn),
        width_multiplier=width_multiplier, name=model_name or entry.name)
    return entry, options


# The build options, as `validate` declares them (create_model passes them on).
OPTIONS = tuple(inspect.signature(validate).parameters)[1:]


def check_option_names(options) -> None:
    """Refuses keyword arguments that are not build options, naming the
    closest one."""
    for name in options:
        if name not in OPTIONS:
            raise InputTypeError(f"create_model() got an unknown option {name!r}."
                                 f"{did_you_mean(name, OPTIONS)} "
                                 f"Options: {', '.join(OPTIONS)}.")


def options_doc(indent=8) -> str:
    """OPTION_DOCS, indented for a docstring."""
    return textwrap.indent(OPTION_DOCS, " " * indent)


def recorded(options: BuildOptions, entry) -> dict:
    """The build options a zoo model carries (`ZooModel.zoo_options`): what
    rebuilds it with `create_model(options["model"], **rest)`, in JSON types.
    The regularizer and initializer are not recorded (they live in the
    layers' own configs)."""
    activation = options.classifier_activation
    return {"model": entry.name, "num_classes": options.num_classes,
            "include_top": options.include_top,
            "input_shape": list(options.input_shape), "pooling": options.pooling,
            "classifier_activation": activation if activation is None
            or isinstance(activation, str) else keras.activations.serialize(activation),
            "dropout_rate": options.dropout_rate,
            "drop_path_rate": options.drop_path_rate,
            "zero_init_last_bn": options.zero_init_last_bn,
            "width_multiplier": options.width_multiplier}


@keras.saving.register_keras_serializable(package="zoo")
class ZooModel(keras.Model):
    """What `create_model` returned before models became plain functional
    ones (their options are now the attribute `zoo_options`, saved beside
    the config by `zoo.io.save_model`): registered so that `.keras` files
    of that time still load; nothing builds it any more."""

    zoo_options = None

    def get_config(self):
        config = super().get_config()
        config["zoo_options"] = self.zoo_options
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        options = config.pop("zoo_options", None)
        model = super().from_config(config, custom_objects=custom_objects)
        model.zoo_options = options
        return model


def build(entry, options: BuildOptions, module=keras):
    """Builds the model of `entry` with validated options under `module`.

    `module` is `keras` for users' models and `tf_keras` for the twin that
    TF-MOT needs; the layers, names and weight order are the same.
    """
    ctx = blocks.Context(
        keras=module,
        regularizer=(None if options.regularizer is None
                     else parse_regularizer(options.regularizer, module)),
        kernel_initializer=options.kernel_initializer,
        drop_path_rate=options.drop_path_rate,
        zero_init_last_bn=options.zero_init_last_bn)
    if options.input_tensor is not None and module is keras:
        inputs = options.input_tensor
        model_inputs = keras.utils.get_source_inputs(inputs)
    else:
        inputs = module.Input(shape=options.input_shape, name="input")
        model_inputs = inputs
    spec = registry.with_width(entry, options.width_multiplier)
    outputs = entry.builder(
        spec, ctx, inputs, include_top=options.include_top,
        num_classes=options.num_classes, pooling=options.pooling,
        classifier_activation=options.classifier_activation,
        dropout_rate=options.dropout_rate)
    if module is not keras:
        return module.Model(model_inputs, outputs, name=options.name)
    model = keras.Model(model_inputs, outputs, name=options.name)
    model.zoo_options = recorded(options, entry)
    return model
