"""Quantization: QAT with TF-MOT and post-training quantization to LiteRT."""

from __future__ import annotations

import warnings

import numpy as np

from . import bridge, finetune
from .options import CompressionError, check_quantize

# Parameter-free zoo layers TF-MOT has no quantize config for; they stay in
# float inside the QAT graph and the converter quantizes their ops.
UNANNOTATED = ("ShortcutA",)


def _unsupported_hint(layer_name, kind, err):
    return CompressionError(
        f"TF-MOT cannot quantize layer {layer_name!r} ({kind}): {err}. Fix: use "
        "post-training quantization (quantize='int8'), or a model whose "
        "BatchNormalization layers directly follow convolutions (not the "
        "pre-activation *_v2 ResNets).")


def quantize_aware(model, data, *, steps=None, epochs=None, learning_rate=1e-5,
                   preserve=None, verbose=0):
    """Quantization-aware training of a Keras 3 model's tf_keras twin.

    Args:
        model: Keras 3 zoo model (pruned or clustered ones included).
        data: zoo.data.Data.
        steps, epochs: the training budget (compression.finetune.steps_for).
        preserve: None, "sparsity" (pruning-preserving QAT) or "cluster"
            (cluster-preserving QAT): TF-MOT's collaborative schemes keep
            zeros / the shared values while training.

    Returns:
        The trained tf_keras QAT model; deploy it with `convert(qat_model,
        "qat")` (QAT results are not copied back into Keras 3).
    """
    if preserve not in (None, "sparsity", "cluster"):
        raise CompressionError(f"preserve must be None, 'sparsity' or 'cluster'; "
                               f"got {preserve!r}.")
    import tensorflow_model_optimization as tfmot
    tfk = bridge.tf_keras_module()
    q = tfmot.quantization.keras
    twin = bridge.to_tf_keras(model)
    for layer in twin.layers:
        kind = type(layer).__name__
        if kind != "BatchNormalization":
            continue
        # tf_keras' KerasTensor._keras_history (private; checked on tf_keras
        # 2.21, tests/test_private_apis.py): the layer feeding this one.
        source = type(layer.input._keras_history.layer).__name__
        if source not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            raise _unsupported_hint(layer.name, kind,
                                    f"BatchNormalization after {source}, not "
                                    "directly after a convolution")

    def annotate(layer):
        if type(layer).__name__ in UNANNOTATED or type(layer).__name__ == "InputLayer":
            return layer
        return q.quantize_annotate_layer(layer)

    annotated = tfk.models.clone_model(twin, clone_function=annotate)
    scheme = None
    if preserve == "sparsity":
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    elif preserve == "cluster":
        scheme = tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme()
    try:
        with q.quantize_scope():
            qat = q.quantize_apply(annotated, scheme) if scheme else q.quantize_apply(annotated)
    except (ValueError, RuntimeError, TypeError, KeyError) as err:
        raise CompressionError(f"TF-MOT could not quantize {model.name}: {err}. Fix: "
                               "use post-training quantization (quantize='int8').") from None
    finetune.fit(qat, tfk, data, finetune.steps_for(data, "qat", steps=steps, epochs=epochs),
                 learning_rate, verbose=verbose)
    return qat


def representative(data, samples=200):
    """Generator of single-image batches for the converter's calibration."""
    def gen():
        n = 0
        for x, _ in data.train:
            for i in range(len(x)):
                yield [np.asarray(x[i:i + 1], np.float32)]
                n += 1
                if n >= samples:
                    return
    return gen


def convert(model, mode=None, *, data=None, io="float", samples=200) -> bytes:
    """Converts a model to a LiteRT (.tflite) flatbuffer.

    Args:
        model: a Keras 3 model (converted through its tf_keras twin) or a
            tf_keras model (e.g. from `quantize_aware`).
        mode: None (float32), "int8" (full-integer, needs `data` for
            calibration), "qat" (a QAT model; int8), "dynamic" (int8 weights,
            float activations) or "float16".
        io: "float" or "int8" inputs/outputs for the int8 modes.

    Returns:
        bytes of the .tflite file.
    """
    check_quantize(mode)
    if io not in ("float", "int8"):
        raise CompressionError(f"io must be 'float' or 'int8'; got {io!r}.")
    if mode == "int8" and data is None:
        raise CompressionError("Full-integer int8 quantization needs representative "
                               "data (data=...) to calibrate activations.")
    import tensorflow as tf
    twin = bridge.to_tf_keras(model) if mode != "qat" else model
    converter = tf.lite.TFLiteConverter.from_keras_model(twin)
    if mode in ("int8", "qat", "dynamic"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "qat") and data is not None:
        converter.representative_dataset = representative(data, samples)
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode in ("int8", "qat") and io == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    from zoo.startup import native_stderr_hidden
    try:
        with warnings.catch_warnings(), native_stderr_hidden():
            # The converter asks for input statistics (mean/std) that only
            # its old quantization path uses; calibration on `data` gives
            # the int8 ranges here, so the warning does not apply.
            warnings.filterwarnings("ignore", message="Statistics for quantized "
                                    "inputs were expected")
            return converter.convert()
    except Exception as err:
        raise CompressionError(f"The LiteRT converter failed for {model.name} "
                               f"({mode or 'float'}): {str(err)[:400]}") from None
