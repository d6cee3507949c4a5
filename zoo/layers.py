"""Custom layers of the zoo, defined once for any Keras module.

The zoo builds every model from standard Keras layers except for one
parameter-free layer: the option-A shortcut of He et al. (2016, §4.2).  It is
defined by a factory so that the same class exists both for Keras 3 (the
user's models) and for tf_keras (the twin TF-MOT needs), and it is registered
as serializable so `.keras` files reload with `safe_mode=True`.
"""

from __future__ import annotations

_CLASSES: dict[str, dict[str, type]] = {}


def _backend_ops(keras):
    # Keras 3 exposes keras.ops; tf_keras offers the same two functions on
    # its backend module.  Nothing else is needed by the layers below.
    ops = getattr(keras, "ops", None)
    if ops is not None:
        return ops.zeros_like, ops.concatenate
    backend = keras.backend
    return backend.zeros_like, backend.concatenate


def custom_layers(keras) -> dict[str, type]:
    """Returns the zoo's custom layer classes for a Keras module.

    Args:
        keras: the `keras` (Keras 3) or `tf_keras` module.

    Returns:
        dict: class name -> layer class, registered under the package "zoo".

    Example:
        >>> import keras
        >>> ShortcutA = custom_layers(keras)["ShortcutA"]
    """
    key = keras.__name__
    if key in _CLASSES:
        return _CLASSES[key]
    zeros_like, concatenate = _backend_ops(keras)
    register = keras.utils.register_keras_serializable

    def _zero_blocks(x, width):
        channels = x.shape[-1]
        blocks = []
        while width > 0:
            take = min(width, channels)
            blocks.append(zeros_like(x[..., :take]))
            width -= take
        return blocks

    @register(package="zoo")
    class ShortcutA(keras.layers.Layer):
        """Parameter-free shortcut: strided subsampling plus zero channels.

        Option A of He et al. 2016: when a stage halves the resolution and
        doubles the width, the identity shortcut takes every `stride`-th pixel
        and pads the new channels with zeros (half before, half after), so the
        CIFAR ResNets keep their published parameter counts.

        Args:
            out_channels: int, number of channels after padding.
            stride: int, spatial subsampling factor.
        """

        def __init__(self, out_channels, stride=2, **kwargs):
            super().__init__(**kwargs)
            self.out_channels = int(out_channels)
            self.stride = int(stride)

        def call(self, inputs):
            s = self.stride
            x = inputs[:, ::s, ::s, :] if s > 1 else inputs
            pad = self.out_channels - x.shape[-1]
            before = pad // 2
            after = pad - before
            # A zero block shaped like a slice of x keeps dtype and the
            # dynamic batch size without any backend-specific op.
            pieces = _zero_blocks(x, before) + [x] + _zero_blocks(x, after)
            return concatenate(pieces, axis=-1) if len(pieces) > 1 else x

        def compute_output_shape(self, input_shape):
            batch, h, w, _ = input_shape
            s = self.stride
            h = None if h is None else (h + s - 1) // s
            w = None if w is None else (w + s - 1) // s
            return (batch, h, w, self.out_channels)

        def get_config(self):
            config = super().get_config()
            config.update(out_channels=self.out_channels, stride=self.stride)
            return config

    _CLASSES[key] = {"ShortcutA": ShortcutA}
    return _CLASSES[key]
