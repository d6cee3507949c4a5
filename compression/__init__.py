"""Compression of zoo (Keras 3) models with TensorFlow Model Optimization.

TF-MOT only accepts tf_keras models, so every function here rebuilds the
model as its tf_keras twin (`to_tf_keras`), applies TF-MOT, and brings the
result back (`to_keras`) or converts it to LiteRT.  TF-MOT and tf_keras are
imported lazily, inside the functions.

Importing this package imports nothing at all: until Python 3.14 ships its
own `compression` package, libraries probe `from compression import zstd`
(jax does, while TensorFlow imports it), so the names below are resolved
lazily (PEP 562) and unknown names raise AttributeError at once.
"""

import importlib

_EXPORTS = {
    "BridgeError": "compression.bridge",
    "to_keras": "compression.bridge",
    "to_tf_keras": "compression.bridge",
    "prune": "compression.prune",
    "cluster": "compression.cluster",
    "quantize_aware": "compression.quantize",
    "convert": "compression.quantize",
    "compress": "compression.pipeline",
    "CompressionError": "compression.options",
    "PRESETS": "compression.presets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'compression' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return __all__
