"""Keras 3 ⇄ tf_keras: rebuilding models in the world TF-MOT understands.

Zoo models are rebuilt with the same builder under tf_keras (same layers,
names and weight order) and their weights copied.  Other Keras 3 models made
only of standard layers are rebuilt from their config; a layer tf_keras does
not have is refused with its name.
"""

from __future__ import annotations

import copy

import keras
import numpy as np

from zoo import factory, registry
from zoo.errors import InputError


class BridgeError(InputError):
    """A model that cannot be moved between Keras 3 and tf_keras."""


def tf_keras_module():
    import tf_keras
    return tf_keras


def _recorded_options(model):
    """The create_model arguments a zoo model recorded when it was built
    (zoo.factory.ZooModel.zoo_options, also after a .keras round trip), or
    None for any other model."""
    recorded = getattr(model, "zoo_options", None)
    if not isinstance(recorded, dict) or "model" not in recorded:
        return None
    try:
        registry.get_entry(recorded["model"])
    except ValueError:
        return None
    options = dict(recorded)
    options["input_shape"] = tuple(options["input_shape"])
    return options


def _copy_weights(source, target, what):
    src = source.get_weights()
    shapes = [tuple(w.shape) for w in target.weights]
    if [tuple(w.shape) for w in src] != shapes:
        raise BridgeError(f"Rebuilt {what} does not match the original weights; "
                          "was the model changed after it was created?")
    target.set_weights(src)
    return target


def _rebuild_zoo(model, module):
    """The zoo builder's copy of `model` under `module` with its weights, or
    None when `model` is not (or no longer) a zoo architecture, in which case
    the callers rebuild it from its config instead."""
    options = _recorded_options(model)
    if options is None:
        return None
    kwargs = {k: v for k, v in options.items() if k != "model"}
    try:
        entry, built = factory.validate(options["model"], model_name=model.name, **kwargs)
        rebuilt = factory.build(entry, built, module)
    except ValueError:
        return None
    # A tf_keras twin carries them too, so that it comes back the same way.
    rebuilt.zoo_options = getattr(model, "zoo_options")
    if [l.name for l in rebuilt.layers[1:]] != [l.name for l in model.layers[1:]]:
        return None
    return _copy_weights(model, rebuilt, model.name)


def to_tf_keras(model):
    """A tf_keras copy of a Keras 3 model, with the same weights.

    Args:
        model: a zoo model (also one reloaded from .keras), or a Keras 3
            model of standard layers.

    Returns:
        tf_keras.Model; the input model is not modified.

    Example:
        >>> twin = compression.to_tf_keras(zoo.create_model("resnet20"))
    """
    tfk = tf_keras_module()
    if isinstance(model, tfk.Model):
        return model
    if not isinstance(model, keras.Model):
        raise BridgeError(f"Expected a Keras model; got {type(model).__name__}.")
    twin = _rebuild_zoo(model, tfk)
    return twin if twin is not None else _from_config(model, tfk)


# --------------------------------------------------------------------------
# Generic models: Keras 3 config -> Keras 2 config


_BASE_KWARGS = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape",
                "batch_input_shape", "batch_size", "weights", "activity_regularizer",
                "autocast", "input_length", "sparse", "ragged"}


def _accepted(cls, config):
    """Drops config keys a tf_keras class does not take (Keras 3 added some,
    e.g. initializers' input_axes)."""
    import inspect
    params = inspect.signature(cls.__init__).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {k: v for k, v in config.items()
            if k in params or (takes_kwargs and k in _BASE_KWARGS)}


def _find_class(tfk, class_name):
    for namespace in (tfk.layers, tfk.initializers, tfk.regularizers, tfk.constraints):
        cls = getattr(namespace, class_name, None)
        if isinstance(cls, type):
            return cls
    return None


def _legacy_object(obj, tfk=None):
    """Keras 3 serialized objects ({module, class_name, config, registered_name})
    become Keras 2 ones ({class_name, config}) with only the keys tf_keras
    accepts."""
    tfk = tfk or tf_keras_module()
    if isinstance(obj, dict):
        if "class_name" in obj and "config" in obj:
            if obj["class_name"] == "DTypePolicy":
                return obj["config"]["name"]
            config = _legacy_object(obj["config"], tfk)
            cls = _find_class(tfk, obj["class_name"])
            if cls is not None and isinstance(config, dict):
                config = _accepted(cls, config)
            return {"class_name": obj["class_name"], "config": config}
        return {k: _legacy_object(v, tfk) for k, v in obj.items()
                if k not in ("module", "registered_name", "build_config",
                             "compile_config", "optional", "quantization_config")}
    if isinstance(obj, list):
        return [_legacy_object(v, tfk) for v in obj]
    return obj


def _legacy_nodes(nodes):
    out = []
    for node in nodes:
        tensors = []

        def collect(arg):
            if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
                name, node_index, tensor_index = arg["config"]["keras_history"]
                tensors.append([name, node_index, tensor_index, {}])
            elif isinstance(arg, (list, tuple)):
                for a in arg:
                    collect(a)
        collect(node.get("args", []))
        out.append(tensors)
    return out


def _from_config(model, tfk):
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in ("InputLayer",):
            continue
        if not hasattr(tfk.layers, cls) or type(layer).__module__.startswith("zoo"):
            raise BridgeError(f"Layer {layer.name!r} ({cls}) cannot be bridged to "
                              "tf_keras: it is not a standard Keras layer there. "
                              "Build the model from standard layers or from the zoo.")
    config = copy.deepcopy(model.get_config())
    try:
        if isinstance(model, keras.Sequential):
            layers = [_legacy_object(l) for l in config["layers"]
                      if l["class_name"] != "InputLayer"]
            for layer_config in layers:
                cls = _find_class(tfk, layer_config["class_name"])
                layer_config["config"] = _accepted(cls, layer_config["config"])
            twin = tfk.Sequential(name=config["name"])
            twin.add(tfk.Input(shape=model.input_shape[1:]))
            for layer_config in layers:
                twin.add(tfk.layers.deserialize(layer_config))
        else:
            legacy = {"name": config["name"], "layers": [],
                      "input_layers": config["input_layers"],
                      "output_layers": config["output_layers"]}
            for layer in config["layers"]:
                cfg = _legacy_object(layer["config"])
                cls = _find_class(tfk, layer["class_name"])
                if cls is not None and layer["class_name"] != "InputLayer":
                    cfg = _accepted(cls, cfg)
                entry = {"class_name": layer["class_name"], "name": layer["name"],
                         "config": cfg,
                         "inbound_nodes": _legacy_nodes(layer.get("inbound_nodes", []))}
                if layer["class_name"] == "InputLayer":
                    cfg = entry["config"]
                    cfg["batch_input_shape"] = cfg.pop("batch_shape", None)
                    cfg.pop("optional", None)
                entry["config"]["name"] = layer["name"]
                legacy["layers"].append(entry)
            twin = tfk.Model.from_config(legacy)
    except BridgeError:
        raise
    except Exception as err:
        raise BridgeError(f"Cannot rebuild {model.name!r} under tf_keras from its "
                          f"config: {type(err).__name__}: {str(err)[:300]}") from None
    return _copy_weights(model, twin, model.name)


def to_keras(legacy_model, like=None):
    """A Keras 3 copy of a (stripped) tf_keras model, with the same weights.

    `like`: the Keras 3 model the twin was made from; when given (and its
    layers have the same names) the result is a clone of it, which works for
    any architecture. Otherwise zoo models are rebuilt by their builder and
    other models from their config.

    Pruned or clustered models must be stripped first (compression does this);
    QAT models are deployed through TFLite instead.
    """
    if isinstance(legacy_model, keras.Model):
        return legacy_model
    wrapped = [l.name for l in legacy_model.layers
               if type(l).__name__ in ("PruneLowMagnitude", "ClusterWeights",
                                       "QuantizeWrapper", "QuantizeWrapperV2")]
    if wrapped:
        raise BridgeError(f"{legacy_model.name} still has TF-MOT wrappers "
                          f"({', '.join(wrapped[:3])}…); strip pruning/clustering "
                          "first, and deploy QAT models through TFLite.")
    if like is not None and [l.name for l in like.layers] == \
            [l.name for l in legacy_model.layers]:
        clone = keras.models.clone_model(like)
        clone.zoo_options = getattr(like, "zoo_options", None)
        return _copy_weights(legacy_model, clone, legacy_model.name)
    model = _rebuild_zoo(legacy_model, keras)
    if model is not None:
        return model
    try:
        model = keras.Model.from_config(legacy_model.get_config()) \
            if not isinstance(legacy_model, tf_keras_module().Sequential) \
            else keras.Sequential.from_config(legacy_model.get_config())
    except Exception as err:
        raise BridgeError(f"Cannot rebuild {legacy_model.name!r} under Keras 3: "
                          f"{type(err).__name__}: {str(err)[:300]}") from None
    return _copy_weights(legacy_model, model, legacy_model.name)


def kernel_sparsity(model, names=None) -> dict:
    """Fraction of zero kernel entries per layer with a kernel."""
    out = {}
    for layer in model.layers:
        if names is not None and layer.name not in names:
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        k = np.asarray(kernel)
        out[layer.name] = float((k == 0).mean())
    return out
