"""torchvision and timm checkpoints for the torchvision-layout models.

The models whose family declares each layer's torch module
(`ModelEntry.torch_module`: `alexnet`, `vgg11`, `resnet18/34`,
`tv_resnet50/101/152`, `resnext50_32x4d`, `resnext101_32x8d`) have
torchvision's layers one for one (timm's ResNet modules use the same
state-dict names); their published checkpoints are weight records
(`zoo.weight_records`). A checkpoint is read as arrays only:

* ``.safetensors`` through the `safetensors` package with numpy (no torch);
* ``.pth`` / ``.pt`` through ``torch.load(weights_only=True)`` when torch is
  installed (never plain pickle).

Every tensor is matched **by its torchvision key**, never by order (order
and shape would swap a block's shortcut BatchNormalization with its last
one without any error). Missing keys, extra keys and wrong shapes are
refused before anything is assigned, naming the first mismatching key.
Conversions: convolution kernels OIHW → HWIO (grouped ones likewise), dense
kernels transposed, AlexNet's first dense layer re-ordered from torch's
C×H×W flatten order to Keras' H×W×C, BatchNormalization as (weight, bias,
running_mean, running_var).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo import heads, registry
from zoo.errors import WeightsError

SUFFIXES = (".safetensors", ".pth", ".pt")
PREPROCESSING = "torch"           # ImageNet mean/std, as torchvision's transforms


class TorchWeightsError(WeightsError):
    """A torchvision/timm file that does not fit the requested model."""


def is_torch_file(path) -> bool:
    return str(path).endswith(SUFFIXES)


def supports(name: str) -> bool:
    """Whether `name` has torchvision's layout (and so takes its files): its
    family declares the torch module of each layer (ModelEntry.torch_module)."""
    return registry.get_entry(name).torch_module is not None


def supported_models() -> list[str]:
    return [n for n in registry.list_models() if supports(n)]


# --------------------------------------------------------------------------
# Reading


def read_state_dict(path) -> dict[str, np.ndarray]:
    """{torch key: numpy array} from a .safetensors, .pth or .pt file."""
    path = Path(path)
    if not path.is_file():
        raise TorchWeightsError(f"Weights file {str(path)!r} does not exist.")
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
            state = load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise TorchWeightsError(f"Cannot read {path} as safetensors (truncated, "
                                    f"corrupt or not numpy-readable, e.g. bfloat16): "
                                    f"{type(err).__name__}: {str(err)[:200]}.") from None
    else:
        state = _torch_load(path)
    return {_strip(k): np.asarray(v) for k, v in state.items()}


def _torch_load(path):
    try:
        import torch
    except ImportError:
        raise TorchWeightsError(
            f"{path.name} is a PyTorch file; reading it needs torch "
            "(pip install torch), or convert it to .safetensors, which needs "
            "nothing more.") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise TorchWeightsError(f"torch.load(weights_only=True) refused {path}: "
                                f"{type(err).__name__}: {str(err)[:200]}. Only "
                                "plain state dicts of tensors are read.") from None
    # Training checkpoints wrap the state dict (timm: "state_dict",
    # "state_dict_ema"; others "model").
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise TorchWeightsError(f"{path} holds a {type(state).__name__}, not a "
                                "state dict.")
    out = {}
    for k, v in state.items():
        if not hasattr(v, "detach"):
            raise TorchWeightsError(f"{path}: entry {k!r} is not a tensor.")
        out[k] = v.detach().cpu().float().numpy() if v.is_floating_point() \
            else v.detach().cpu().numpy()
    return out


def _strip(key: str) -> str:
    # DataParallel / DistributedDataParallel checkpoints prefix every key.
    return key[len("module."):] if key.startswith("module.") else key


# --------------------------------------------------------------------------
# Names: zoo layer -> torchvision module (declared by the family modules)


def module_names(model, name: str) -> dict[str, str]:
    """{zoo layer name: torchvision module name} for every weighted layer."""
    entry = registry.get_entry(name)
    out = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        module = entry.torch_module(entry.spec, layer.name)
        if module is None:
            raise TorchWeightsError(f"No torchvision name for layer {layer.name!r} "
                                    f"of {name}.")
        out[layer.name] = module
    return out


# --------------------------------------------------------------------------
# Converting


def _convert(layer, module: str, state: dict, used: set,
             flat_shape=None) -> list[np.ndarray]:
    kind = type(layer).__name__

    def take(suffix):
        key = f"{module}.{suffix}"
        if key not in state:
            raise TorchWeightsError(f"missing key {key!r} (for layer {layer.name!r})")
        used.add(key)
        return state[key]

    if kind == "BatchNormalization":
        used.add(f"{module}.num_batches_tracked")
        return [take("weight"), take("bias"), take("running_mean"), take("running_var")]
    if "Conv" in kind:
        kernel = take("weight")
        if kernel.ndim != 4:
            raise TorchWeightsError(f"key {module + '.weight'!r} has shape "
                                    f"{kernel.shape}, not a convolution kernel")
        values = [kernel.transpose(2, 3, 1, 0)]
        return values + ([take("bias")] if len(layer.weights) > 1 else [])
    if kind == "Dense":
        weight = take("weight")
        if weight.ndim != 2:
            raise TorchWeightsError(f"key {module + '.weight'!r} has shape "
                                    f"{weight.shape}, not a linear layer")
        if flat_shape is not None and weight.shape[1] == int(np.prod(flat_shape)):
            h, w, c = flat_shape
            weight = weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1) \
                .reshape(weight.shape[0], -1)
        return [weight.T] + ([take("bias")] if len(layer.weights) > 1 else [])
    raise TorchWeightsError(f"layer {layer.name!r} ({kind}) has no torchvision "
                            "counterpart")


def to_layer_arrays(model, name: str, state: dict, *, source: str) -> dict:
    """{zoo layer: [arrays]} from a torchvision state dict, all keys checked.

    Raises TorchWeightsError naming the first missing key, extra key or
    shape that does not fit; nothing is assigned here.
    """
    if not supports(name):
        raise TorchWeightsError(
            f"{source} is a torchvision/timm file, but {name} does not have "
            f"torchvision's layout; models that do: {', '.join(supported_models())}.")
    flatten = next((layer for layer in model.layers if layer.name == "flatten"), None)
    modules = module_names(model, name)
    # The first dense layer after a Flatten (AlexNet, VGG) reads the
    # flattened H×W×C feature map.
    first_dense = next((layer.name for layer in model.layers
                        if type(layer).__name__ == "Dense"), None)
    flat = {first_dense: tuple(flatten.input.shape[1:])} if flatten is not None else {}
    classifier = heads.classifier_name(model)
    has_head = classifier is not None
    stem = next(layer.name for layer in model.layers if "Conv" in type(layer).__name__)
    used, arrays = set(), {}
    try:
        for layer in model.layers:
            if layer.name not in modules:
                continue
            values = _convert(layer, modules[layer.name], state, used,
                              flat.get(layer.name))
            shapes = [tuple(v.shape) for v in values]
            expected = [tuple(w.shape) for w in layer.weights]
            if shapes != expected and not (layer.name == classifier or (
                    layer.name == stem and _stem_adaptable(shapes, expected))):
                raise TorchWeightsError(
                    f"key {modules[layer.name] + '.weight'!r} gives shapes {shapes} "
                    f"for layer {layer.name!r}, which has {expected}")
            arrays[layer.name] = values
    except TorchWeightsError as err:
        raise TorchWeightsError(f"{source} does not fit {name}: {err}.") from None
    # A headless model ignores the file's head (its dense layers).
    head_modules = set() if has_head else {classifier_module(name).split(".")[0]}
    extra = sorted(k for k in state if k not in used
                   and k.split(".")[0] not in head_modules)
    if extra:
        raise TorchWeightsError(f"{source} does not fit {name}: extra key "
                                f"{extra[0]!r} ({len(extra)} unused in all); it was "
                                "saved from another architecture.")
    return arrays


def _stem_adaptable(shapes, expected) -> bool:
    # Another input channel count: zoo.weights.assign adapts the stem kernel.
    return len(shapes[0]) == 4 and shapes[0][:2] == expected[0][:2] \
        and shapes[0][3] == expected[0][3]


def classifier_module(name: str) -> str:
    """The torch module of `name`'s classifier ("fc", "classifier.6")."""
    entry = registry.get_entry(name)
    return entry.torch_module(entry.spec, "predictions")


def num_classes(state: dict, name: str) -> int | None:
    """The classifier width stored in a state dict, if any (None for models
    without torchvision's layout, which `to_layer_arrays` refuses)."""
    if not supports(name):
        return None
    key = f"{classifier_module(name)}.weight"
    return int(state[key].shape[0]) if key in state else None
