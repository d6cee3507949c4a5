"""cnn-zoo: exact Keras 3 CNN architectures behind one registry.

Example:
    >>> import zoo
    >>> zoo.list_models("resnext*")
    >>> model = zoo.create_model("resnet20", num_classes=10, input_shape=(32, 32, 3))
    >>> zoo.model_info("resnet50")["macs"]
"""

from __future__ import annotations

from zoo import startup as _startup

_startup.apply_backend_option()     # `zoo --backend jax ...`: before Keras
_startup.quiet_import()     # before Keras imports TensorFlow; see zoo.startup

import keras as _keras  # noqa: E402

from zoo import applications as _applications  # noqa: E402
from zoo import factory, registry  # noqa: F401  (zoo.factory is public API)
from zoo.layers import custom_layers as _custom_layers  # noqa: E402
from zoo.profile import count_macs, count_params  # noqa: E402
from zoo.registry import FAMILIES, list_models  # noqa: E402

# Registers the zoo's serializable layers, so `keras.models.load_model`
# reloads zoo models (safe_mode=True) in any process that imported zoo.
_custom_layers(_keras)

__version__ = "0.1.0"


def create_model(name, *, weights=None, features_only=False, out_indices=None,
                 skip_mismatch=False, **options):
    """Builds a registered architecture as a plain functional `keras.Model`.

    Args:
        name: registry name (see `list_models()`).
        weights: None (random initialisation), "imagenet" (keras.applications'
            files), a shipped checkpoint tag ("resnet20.fashion_mnist"), a
            `.weights.h5`, `.h5` or `.keras` file, or (torchvision layouts) a
            torchvision/timm `.safetensors`, `.pth` or `.pt` file; matched by
            layer name, refused when the layers differ (docs/transfer.md).
        features_only: return a model with one output per stage (stem
            first) and a `feature_info` list of {name, channels, stride}.
        out_indices: which stages to output with features_only.
        skip_mismatch: load only the layers whose names and shapes match
            the file, leaving the others as initialised (as Keras'
            `load_weights(skip_mismatch=True)`).
        **options: the build options, checked by `zoo.factory.validate`
            (declared there once; recorded on the model as `zoo_options`):
{build_options}
    Returns:
        keras.Model

    Example:
        >>> model = zoo.create_model("resnet20", num_classes=10,
        ...                          input_shape=(32, 32, 1))
    """
    factory.check_option_names(options)
    from zoo import weights as weights_lib
    return weights_lib.create_with_weights(
        name, weights=weights, features_only=features_only, out_indices=out_indices,
        skip_mismatch=skip_mismatch, **options)


create_model.__doc__ = create_model.__doc__.replace("{build_options}\n",
                                                    factory.options_doc(indent=12))


def fine_tune(model, train_data, val_data=None, **kwargs):
    """Two-phase fine-tuning; see `zoo.transfer.fine_tune`."""
    from zoo import transfer
    return transfer.fine_tune(model, train_data, val_data, **kwargs)


def preprocess_input(name, x):
    """Scales images in [0, 255] the way `name`'s reference weights expect.

    caffe for keras.applications ResNet v1, tf for ResNetV2, MobileNet and
    Xception, torch for torchvision-layout models; the mode is
    `model_info(name)["preprocessing"]`.  Checkpoints shipped here carry
    their own mode in their model card (`zoo.weights`).

    Example:
        >>> x = zoo.preprocess_input("resnet50", images)   # BGR, mean-centred
    """
    from zoo import preprocessing
    return preprocessing.scale(x, registry.get_entry(name).preprocessing)


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
    if kwargs.get("input_shape") is None and kwargs.get("input_tensor") is None:
        # MACs need a size: the reference one, also without the classifier.
        kwargs["input_shape"] = (entry.default_size, entry.default_size, 3)
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
        "weights": registry.weight_tags(entry.name),
        "reference": entry.reference,
    }


for _name in registry.list_models():
    globals()[_name] = _applications.model_function(_name, create_model)

__all__ = ["FAMILIES", "count_macs", "count_params", "create_model",
           "fine_tune", "list_models", "model_info", "preprocess_input",
           *registry.list_models()]
