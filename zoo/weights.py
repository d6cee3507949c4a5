"""Pretrained weights: tags, files, keras.applications compatibility and
adaptation (other class counts, other channel counts).

Weight files are read as data only (HDF5 arrays, never a model config or
code), matched to the model by layer name and checked shape by shape before
anything is assigned, so a wrong file raises an error and nothing is
half-loaded.

Accepted `weights=`:

* None – random initialisation;
* a tag of one of the model's weight records (zoo.weight_records), short or
  in full: "imagenet" (keras.applications' files, same names, origins and
  hashes, resolved through Keras' cache), "tv_in1k" / "tv2_in1k" (torchvision's
  checkpoints, from torch's hub cache), "fashion_mnist" (shipped);
* a path to a Keras 3 ``.weights.h5``, a legacy Keras 2 ``.h5`` weight file
  (the format keras.applications publishes) or a ``.keras`` file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from zoo import factory, heads, registry, torch_weights, weight_files, weight_records
from zoo.registry import WeightRecord, has_imagenet
from zoo.errors import InputError, WeightsError  # noqa: F401 (zoo.weights.WeightsError)

log = logging.getLogger("zoo.weights")
sha256 = weight_files.digest
read_weights = weight_files.read_weights
file_info = weight_files.file_info


# --------------------------------------------------------------------------
# keras.applications ImageNet files

def imagenet_file(name: str, include_top: bool, rows: int = 224):
    """(file name, origin, md5 or None) exactly as keras.applications uses,
    read from the model's "imagenet" record.

    Raises WeightsError for models keras.applications has no weights for.
    """
    record = registry.get_entry(name).weights.get("imagenet")
    if record is None:
        raise WeightsError(_no_imagenet(name))
    file = record.file_for(include_top, rows)
    md5 = file.hash.split(":", 1)[1] if file.hash else None
    return file.name, file.url, md5


def _no_imagenet(name) -> str:
    have = ", ".join(n for n in registry.list_models() if has_imagenet(n))
    others = [t for t in registry.weight_tags(name) if t.split(".", 1)[1] != "imagenet"]
    also = f" Its other weights: {', '.join(others)}." if others else ""
    return (f"{name} has no ImageNet weights (keras.applications publishes none "
            f"for it).{also} Models with ImageNet weights: {have}.")


def preprocessing_of(name: str, weights) -> str | None:
    """The input scaling `weights` were trained with, when it is known: its
    record's (a tag, or a converted file), "torch" for a torchvision/timm
    file."""
    if weights is None:
        return None
    weights = os.fspath(weights)
    record = resolve_tag(name, weights) or weight_records.read_converted(weights)
    if record is not None:
        return record.preprocessing
    if torch_weights.is_torch_file(weights):
        return torch_weights.PREPROCESSING
    return file_info(weights).get("preprocessing")


# --------------------------------------------------------------------------
# Assigning


def adapt_stem_kernel(kernel: np.ndarray, channels: int) -> np.ndarray:
    """Adapts an RGB first-layer kernel (kh, kw, 3, out) to `channels` inputs.

    1 channel: the sum over RGB, so a grey image x gives the same features as
    the RGB image (x, x, x).  N channels: RGB repeated cyclically and scaled
    by 3/N, which keeps the activation scale.
    """
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    index = np.arange(channels) % kernel.shape[2]
    return kernel[:, :, index, :] * (kernel.shape[2] / channels)


# keras.applications' Xception file leaves its four residual convolutions and
# their BatchNormalizations unnamed ("conv2d", "batch_normalization_3", ...).
# It is the one file that is matched by order, and only when it is that file.
_AUTO_NAME = re.compile(r"^(conv2d|batch_normalization)(_\d+)?$")


def _keyed_by_order(model, arrays: dict) -> dict:
    """{model layer: arrays} for keras.applications' Xception file.

    Other files are returned unchanged: names are the only safe key, since
    order-and-shape matching swaps same-shape layers (a ResNet block's
    shortcut BN and its last BN) without any error.
    """
    auto = [k for k in arrays if _AUTO_NAME.match(k)]
    if not auto or not any(layer.name == "block14_sepconv2" for layer in model.layers):
        return arrays
    weighted = [layer for layer in model.layers if layer.weights]
    items = list(arrays.items())
    if len(items) < len(weighted):
        return arrays
    log.info("Matched %d unnamed layers of %s by order (keras.applications' "
             "Xception layout).", len(auto), model.name)
    return {layer.name: values for layer, (_, values) in zip(weighted, items)}


def _is_head(values) -> bool:
    # Dense kernels are 2-D: a file's classifier (and AlexNet's hidden
    # dense layers), which a model built with include_top=False lacks.
    return bool(values) and np.ndim(values[0]) == 2


def assign(model, arrays: dict, *, source: str, skip_classifier=False,
           adapt_channels=True, skip_mismatch=False) -> list[str]:
    """Assigns {layer name: [arrays]} to `model` after checking everything.

    Layers are matched by name only. Every weighted layer of the model must
    be in the file and every layer of the file in the model (a headless
    model may ignore the file's dense head), else a WeightsError names them
    and nothing is assigned.

    Args:
        model: the zoo model.
        arrays: from `read_weights`.
        source: how to name the file in messages.
        skip_classifier: leave the classifier freshly initialised when its
            shape differs (other number of classes).
        adapt_channels: adapt the first convolution to the model's channels.
        skip_mismatch: load what matches by name and shape and leave the rest
            as initialised (like Keras' `skip_mismatch`), instead of refusing.

    Returns:
        Names of layers left as initialised; `model.zoo_adapted_stem` says
        which first convolution was adapted ({"layer", "from_channels",
        "to_channels"} or None).
    """
    arrays = _keyed_by_order(model, arrays)
    weighted = [layer for layer in model.layers if layer.weights]
    classifier = heads.classifier_name(model)
    missing = _check_names(model, weighted, arrays, source, skip_mismatch, classifier)
    plan, skipped = [], list(missing)
    first_conv, adapted = True, None
    for layer in weighted:
        if layer.name not in arrays:
            continue
        current = [tuple(w.shape) for w in layer.weights]
        values = list(arrays[layer.name])
        shapes = [tuple(v.shape) for v in values]
        is_conv = "Conv" in type(layer).__name__
        if is_conv and first_conv and adapt_channels and _needs_adapting(shapes, current):
            values[0] = adapt_stem_kernel(values[0], current[0][2])
            adapted = {"layer": layer.name, "from_channels": shapes[0][2],
                       "to_channels": current[0][2]}
            shapes[0] = tuple(values[0].shape)
            log.info("Adapted %s kernel from %d to %d input channels.",
                     layer.name, adapted["from_channels"], adapted["to_channels"])
        if is_conv:
            first_conv = False
        if shapes != current:
            if (skip_classifier and layer.name == classifier) or skip_mismatch:
                skipped.append(layer.name)
                continue
            raise WeightsError(f"{source} does not fit this model: layer "
                               f"{layer.name!r} has weight shapes {current} in the "
                               f"model but {shapes} in the file.")
        plan.append((layer, values))
    for layer, values in plan:
        # Shipped checkpoints store float16 arrays; cast to each variable.
        layer.set_weights([np.asarray(v).astype(w.dtype)
                           for v, w in zip(values, layer.weights)])
    model.zoo_adapted_stem = adapted          # read by zoo.transfer.prepare
    return skipped


def _needs_adapting(shapes, current) -> bool:
    """Whether a first convolution's file kernel differs from the layer's
    only in its input channels."""
    return len(shapes) >= 1 and len(current[0]) == 4 and shapes[0][2] != current[0][2] \
        and shapes[0][:2] == current[0][:2] and shapes[0][3] == current[0][3]


def _check_names(model, weighted, arrays, source, skip_mismatch, classifier) -> list[str]:
    """The model's layers missing from the file; raises when names differ
    either way and `skip_mismatch` is off."""
    names = {layer.name for layer in weighted}
    has_head = classifier is not None
    extra = [k for k, v in arrays.items()
             if k not in names and (has_head or not _is_head(v))]
    missing = [layer.name for layer in weighted if layer.name not in arrays]
    if (extra or missing) and not skip_mismatch:
        parts = []
        if missing:
            parts.append(f"the model's layer(s) {_few(missing)} are not in the file")
        if extra:
            parts.append(f"the file's layer(s) {_few(extra)} are not in the model")
        raise WeightsError(f"{source} does not fit {model.name}: "
                           f"{'; '.join(parts)}. It was saved from another "
                           "architecture or variant; pass skip_mismatch=True to "
                           "load only the layers that match.")
    return missing


def _few(names, n=5) -> str:
    shown = ", ".join(repr(x) for x in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


# --------------------------------------------------------------------------
# Resolving `weights=`


def resolve_tag(name: str, weights: str) -> WeightRecord | None:
    """The model's WeightRecord for a tag ("imagenet", "tv_in1k",
    "resnet20.fashion_mnist"), None for anything else (a path)."""
    entry = registry.get_entry(name)
    tag = weights
    if "." in weights and os.path.sep not in weights and weights.split(".", 1)[0] in registry.entries():
        arch, tag = weights.split(".", 1)
        if arch != entry.name:
            raise WeightsError(f"Weights {weights!r} belong to {arch}, not {entry.name}.")
    return entry.weights.get(tag)


def looks_like_path(weights: str) -> bool:
    return (os.path.sep in weights
            or weights.endswith((".h5", ".keras") + torch_weights.SUFFIXES)
            or os.path.exists(weights))


def _record_of(name, weights):
    """The record `weights` names, None for a path; WeightsError for an
    unknown tag."""
    if weights is None:
        return None
    record = resolve_tag(name, weights)
    if record is None and weights == "imagenet":
        raise WeightsError(_no_imagenet(name))
    if record is None and not looks_like_path(weights):
        tags = ", ".join(registry.weight_tags(name))
        raise WeightsError(f"Unknown weights {weights!r} for {name}; available: "
                           f"{tags or 'none'}, or a path to .weights.h5 / .h5 / "
                           ".keras (or .safetensors / .pth from torchvision or timm).")
    return record


def check_available(name: str, weights) -> None:
    """Refuses, before any work, weights that cannot load: an unknown tag, a
    path that does not exist, or a published checkpoint whose file is
    neither cached nor downloadable (keras.applications' files, one per
    input size, are found when the model's size is known, at load time)."""
    if weights is None:
        return
    weights = os.fspath(weights)
    record = _record_of(name, weights)
    if record is None and not Path(weights).is_file():
        raise WeightsError(f"Weights file {weights!r} does not exist.")
    if record is not None and len(record.files) == 1:
        weight_files.locate(record)


def create_with_weights(name, *, weights=None, include_top=None, num_classes=None,
                        input_shape=None, features_only=False, out_indices=None,
                        skip_mismatch=False, **kwargs):
    """`create_model` with `weights=` and feature extraction (see zoo.create_model)."""
    entry = registry.get_entry(name)
    if features_only and include_top is True:
        raise InputError("features_only=True returns the backbone's stage "
                         "outputs; it cannot be combined with include_top=True.")
    include_top = not features_only if include_top is None else include_top
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise WeightsError(f"weights must be None, 'imagenet', a tag or a path; "
                           f"got {type(weights).__name__}.")
    weights = None if weights is None else os.fspath(weights)
    record = _record_of(entry.name, weights)
    if record is not None and record.source == "shipped" and input_shape is None:
        input_shape = record.input_shape        # trained here at that size
    if num_classes is None and kwargs.get("classes") is None and include_top \
            and weights is not None:
        # The weights decide the default class count (1000 for ImageNet, as
        # many as a fine-tuned torchvision/timm checkpoint has).
        num_classes = record.num_classes if record is not None else (
            torch_weights.num_classes(torch_weights.read_state_dict(weights), name)
            if torch_weights.is_torch_file(weights) else None)
    entry, options = factory.validate(
        name, num_classes=num_classes, include_top=include_top,
        input_shape=input_shape, **kwargs)
    model = factory.build(entry, options)
    if weights is not None:
        load_into(model, name, weights, spec=record, include_top=options.include_top,
                  skip_mismatch=skip_mismatch)
    if features_only:
        model = feature_extractor(model, entry, options, out_indices)
    return model


def load_into(model, name, weights, *, spec=None, include_top=True,
              skip_mismatch=False):
    """Loads `weights` (a tag or a path) into a built zoo model; `spec` is
    the tag's WeightRecord when the caller has resolved it."""
    spec = spec or _record_of(name, os.fspath(weights))
    if spec is not None:
        path = weight_files.locate(spec, include_top, model.input_shape[1])
        source = path.name if spec.source == "keras.applications" else spec.full_tag
    else:
        path = Path(weights)
        source = str(path)
    if torch_weights.is_torch_file(path):
        arrays = torch_weights.to_layer_arrays(
            model, name, torch_weights.read_state_dict(path), source=source)
    else:
        arrays = read_weights(path)
    skipped = assign(model, arrays, source=source, skip_classifier=True,
                     skip_mismatch=skip_mismatch)
    if skipped and skipped == [heads.classifier_name(model)]:
        log.warning("Loaded %s into %s except the classifier (%s), which has "
                    "another number of classes and is freshly initialised.",
                    source, name, ", ".join(skipped))
    elif skipped:
        log.warning("Loaded %s into %s except %d layer(s) that do not match it "
                    "(skip_mismatch=True), left as initialised: %s.",
                    source, name, len(skipped), _few(skipped, 10))
    return model


def feature_extractor(model, entry, options, out_indices=None):
    """A model with one output per stage and `feature_info` describing them."""
    import keras
    spec = registry.with_width(entry, options.width_multiplier)
    names = entry.stage_names(spec)
    indices = tuple(range(len(names))) if out_indices is None else tuple(out_indices)
    bad = [i for i in indices if not isinstance(i, int) or not -len(names) <= i < len(names)]
    if bad or not indices:
        raise InputError(f"out_indices must pick stages 0..{len(names) - 1} of "
                         f"{entry.name}; got {out_indices!r}.")
    picked = [names[i] for i in indices]
    outputs = [model.get_layer(n).output for n in picked]
    extractor = keras.Model(model.input, outputs, name=f"{model.name}_features")
    h = model.input_shape[1]
    info = []
    for n, out in zip(picked, outputs):
        stride = (h // out.shape[1]) if h and out.shape[1] else None
        info.append({"name": n, "channels": int(out.shape[-1]), "stride": stride})
    extractor.feature_info = info
    return extractor
