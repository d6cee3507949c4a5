"""The zoo's one custom layer, kept so that older model files still load.

The zoo builds every model from standard Keras layers. Until models became
portable (zoo.blocks.option_a), the option-A shortcut of He et al. (2016,
§4.2) was this parameter-free layer; `.keras` files of the CIFAR ResNets
saved then name it. It is defined by a factory so that the same class
exists for Keras 3 and for tf_keras (the twin TF-MOT needs), and it is
registered as serializable so those files reload with `safe_mode=True`.
"""

from __future__ import annotations

_CLASSES: dict[str, dict[str, type]] = {}


def _channel_pad(keras):
    """pad(x, before, after) on the last axis, for a Keras module.

    One PAD op (rather than a concatenation with zeros) keeps one
    quantization scale for the shortcut, which LiteRT's int8 kernels need.
    Keras 3 has keras.ops.pad for every backend; tf_keras (TensorFlow only)
    uses TensorFlow's pad, imported only when a tf_keras twin is built.
    """
    ops = getattr(keras, "ops", None)
    if ops is not None:
        return lambda x, before, after: ops.pad(
            x, [[0, 0], [0, 0], [0, 0], [before, after]])
    import tensorflow as tf
    return lambda x, before, after: tf.pad(
        x, [[0, 0], [0, 0], [0, 0], [before, after]])


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
    pad_channels = _channel_pad(keras)
    register = keras.utils.register_keras_serializable

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
            return pad_channels(x, before, after) if pad else x

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
