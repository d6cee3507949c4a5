"""Compression of zoo (Keras 3) models with TensorFlow Model Optimization.

TF-MOT only accepts tf_keras models, so every function here rebuilds the
model as its tf_keras twin (`to_tf_keras`), applies TF-MOT, and brings the
result back (`to_keras`) or converts it to LiteRT.  TF-MOT and tf_keras are
imported lazily, inside the functions.

Importing this package imports nothing at all: before Python 3.14, whose
standard library has its own `compression` package, libraries probe `from
compression import zstd` (jax does, while TensorFlow imports it), so the
names below are resolved lazily (PEP 562) and unknown names raise
AttributeError at once.

Import it as `zoo.compression` (the name the standard library cannot
shadow; zoo/compression/__init__.py maps it onto this folder); `import
compression` works too where the standard library has no such package
(Python < 3.14). The modules here import each other relatively, so they
work under both names.
"""

import importlib

_EXPORTS = {
    "BridgeError": ".bridge",
    "to_keras": ".bridge",
    "to_tf_keras": ".bridge",
    "prune": ".prune",
    "cluster": ".cluster",
    "quantize_aware": ".quantize",
    "convert": ".quantize",
    "compress": ".pipeline",
    "CompressionError": ".options",
    "PRESETS": ".presets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__():
    return __all__
