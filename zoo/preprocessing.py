"""Input scaling modes shared by the data pipeline and `zoo.preprocess_input`.

Modes (pixels arrive as floats in [0, 255]):

* ``unit``  – x / 255, the default for models trained from scratch here.
* ``tf``    – x / 127.5 − 1 (ResNetV2, MobileNet, Xception weights).
* ``caffe`` – RGB→BGR, minus the ImageNet channel means (ResNet v1 weights).
* ``torch`` – x / 255, minus mean, divided by std (torchvision weights).
* ``raw``   – unchanged.
"""

from __future__ import annotations

import keras
import numpy as np

from zoo.errors import InputError

MODES = ("unit", "tf", "caffe", "torch", "raw")
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"Unknown preprocessing {mode!r}; use one of "
                         f"{', '.join(MODES)}.")
    return mode


def _per_channel(values, channels):
    if channels == len(values):
        return values
    mean = sum(values) / len(values)
    return (mean,) * channels


def scale(x, mode: str):
    """Scales pixels in [0, 255] (last axis = channels) for `mode`.

    Works on NumPy arrays, backend tensors and, under every Keras backend,
    the TensorFlow tensors of a `tf.data` pipeline: it uses only
    arithmetic and slicing (a keras.ops call inside `tf.data` fails under
    the JAX backend), so the same function serves pipelines and user code.

    Example:
        >>> scale(np.full((1, 2, 2, 3), 255.0), "tf").max()
        1.0
    """
    check_mode(mode)
    if not hasattr(x, "dtype") or isinstance(x, np.ndarray):
        x = np.asarray(x, np.float32)
    elif str(getattr(x.dtype, "name", x.dtype)) != "float32":
        x = keras.ops.cast(x, "float32")
    channels = x.shape[-1]
    if mode == "raw":
        return x
    if mode == "unit":
        return x / 255.0
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "caffe":
        if channels == 3:
            x = x[..., ::-1]
        return x - np.asarray(_per_channel(_CAFFE_MEAN_BGR, channels), np.float32)
    mean = np.asarray(_per_channel(_TORCH_MEAN, channels), np.float32)
    std = np.asarray(_per_channel(_TORCH_STD, channels), np.float32)
    return (x / 255.0 - mean) / std
