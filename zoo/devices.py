"""Where and in what precision a training run computes: the measured fast
path of this machine (`fast_path`) and the tf.distribute strategy of
`TrainConfig.strategy`."""

from __future__ import annotations

from zoo import registry


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fast_path(model_name: str):
    """(precision, jit_compile) of the fastest measured training setup for
    `model_name` on this machine (docs/benchmarks.md):

    * GPU: mixed_float16.
    * CPU with bf16 instructions (AVX512-BF16 or AMX): mixed_bfloat16, except
      for models whose family says bf16 does not pay
      (`ModelEntry.bf16_training`: the MobileNets, whose depthwise
      convolutions run slower in bf16, 0.85× measured), which stay float32.
    * other CPUs: float32.
    XLA is never switched on: it made CPU training slower in every
    measurement.
    """
    import tensorflow as tf
    entry = registry.get_entry(model_name)
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16", False
    if not _cpu_has_bf16() or not entry.bf16_training:
        return "float32", False
    return "mixed_bfloat16", False


def _strategy(name):
    """The tf.distribute strategy `name` (\"mirrored\": every GPU, else every
    CPU device), None for none."""
    if name is None:
        return None
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices=devices)
