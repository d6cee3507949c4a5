"""cnn-zoo: exact Keras 3 CNN architectures behind one registry.

Example:
    >>> import zoo
    >>> zoo.list_models("resnext*")
    >>> model = zoo.create_model("resnet20", num_classes=10, input_shape=(32, 32, 3))
    >>> zoo.model_info("resnet50")["macs"]
"""

from __future__ import annotations

import functools

from zoo import factory, registry
from zoo.profile import count_macs, count_params
from zoo.registry import FAMILIES, list_models

__version__ = "0.1.0"


def create_model(name, *, weights=None, num_classes=None, classes=None,
                 include_top=True, input_shape=None, input_tensor=None,
                 pooling=None, classifier_activation="softmax",
                 dropout_rate=None, regularizer=None,
                 kernel_initializer="he_normal", drop_path_rate=0.0,
                 zero_init_last_bn=False, width_multiplier=None,
                 model_name=None):
    """Builds a registered architecture as a plain functional `keras.Model`.

    Args:
        name: registry name (see `list_models()`).
        weights: None (random initialisation).
        num_classes: classifier width (alias `classes`); defaults to the
            model's reference dataset (1000 for ImageNet models, 10 for CIFAR
            ones).
        include_top: keep the classifier.
        input_shape: (height, width, channels); defaults to the model's
            default size with 3 channels.  Height/width may be None for fully
            convolutional families.
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

    Returns:
        keras.Model

    Example:
        >>> model = zoo.create_model("resnet20", num_classes=10,
        ...                          input_shape=(32, 32, 1))
    """
    if weights is not None:
        raise ValueError(f"Unknown weights {weights!r}; use weights=None "
                         "(random initialisation).")
    entry, options = factory.validate(
        name, num_classes=num_classes, classes=classes, include_top=include_top,
        input_shape=input_shape, input_tensor=input_tensor, pooling=pooling,
        classifier_activation=classifier_activation, dropout_rate=dropout_rate,
        regularizer=regularizer, kernel_initializer=kernel_initializer,
        drop_path_rate=drop_path_rate, zero_init_last_bn=zero_init_last_bn,
        width_multiplier=width_multiplier, model_name=model_name)
    return factory.build(entry, options)


def model_info(name, **kwargs) -> dict:
    """Facts about a model, built at its default input (or with `kwargs`).

    Returns:
        dict with name, family, params (total, trainable), macs, default and
        minimum input size, default classes, preprocessing, weight tags and
        reference.

    Example:
        >>> zoo.model_info("resnet50")["params"]["total"]
        25636712
    """
    entry = registry.get_entry(name)
    model = create_model(name, **kwargs)
    return {
        "name": entry.name,
        "family": entry.family,
        "params": count_params(model),
        "macs": count_macs(model),
        "input_shape": tuple(model.input_shape[1:]),
        "default_input_size": (entry.default_size, entry.default_size),
        "min_input_size": (entry.min_size, entry.min_size),
        "default_classes": entry.default_classes,
        "preprocessing": entry.preprocessing,
        "weights": sorted(f"{entry.name}.{tag}" for tag in entry.weights),
        "reference": entry.reference,
    }


def _model_function(model_name):
    def build(**kwargs):
        return create_model(model_name, **kwargs)
    build.__name__ = model_name
    build.__qualname__ = model_name
    build.__doc__ = (f"Builds `{model_name}`; same arguments as "
                     f"`zoo.create_model({model_name!r}, ...)`.\n\n"
                     f"Reference: {registry.get_entry(model_name).reference}")
    return build


for _name in registry.list_models():
    globals()[_name] = _model_function(_name)

__all__ = ["FAMILIES", "count_macs", "count_params", "create_model",
           "list_models", "model_info", *registry.list_models()]
