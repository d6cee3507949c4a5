"""Parameter and multiply-accumulate (MAC) counts of a built model."""

from __future__ import annotations

import math
from zoo.errors import InputError


def _shape(tensor):
    return tuple(tensor.shape)


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer for one sample.

    Convolutions and dense layers only (BatchNorm, activations, pooling and
    additions are conventionally left out, as in the papers' figures).
    """
    kind = type(layer).__name__
    if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
        return 0
    in_shape = _shape(layer.input)
    out_shape = _shape(layer.output)
    if kind == "Dense":
        return math.prod(d for d in in_shape[1:]) * out_shape[-1]
    kh, kw = layer.kernel_size
    out_pixels = out_shape[1] * out_shape[2]
    c_in = in_shape[-1]
    if kind == "Conv2D":
        return out_pixels * kh * kw * (c_in // layer.groups) * out_shape[-1]
    if kind == "DepthwiseConv2D":
        return out_pixels * kh * kw * c_in * layer.depth_multiplier
    depthwise = out_pixels * kh * kw * c_in * layer.depth_multiplier
    return depthwise + out_pixels * c_in * layer.depth_multiplier * out_shape[-1]


def count_macs(model) -> int:
    """Total MACs of one forward pass of one sample through `model`.

    Example:
        >>> count_macs(zoo.create_model("resnet50"))   # ≈ 3.87e9
    """
    if any(d is None for d in model.input_shape[1:3]):
        raise InputError("MACs need a model with a known input height and width.")
    return sum(layer_macs(layer) for layer in model.layers)


def count_params(model) -> dict:
    """{"total", "trainable", "non_trainable"} parameter counts."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = model.count_params()
    return {"total": int(total), "trainable": int(trainable),
            "non_trainable": int(total - trainable)}
