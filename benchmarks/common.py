"""Helpers shared by the benchmark scripts: machine facts and timing.

The scripts load this file by path (`runpy.run_path`), and loading it takes
the benchmarks folder off `sys.path`: Python puts a script's folder first,
and there `benchmarks/tuning.py` and `benchmarks/compression.py` would
shadow the `tuning` and `compression` packages (an appended entry would
still win over setuptools' editable-install finder).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def machine() -> dict:
    import tensorflow as tf
    flags, cpu = [], platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    flags = sorted(have & {"avx2", "avx512f", "avx512_bf16",
                                           "amx_bf16", "amx_tile", "fma"})
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "cpu_flags": flags,
            "machine": platform.machine(), "tensorflow": tf.__version__,
            "python": platform.python_version()}


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def dump(path, data):
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=2, default=str)
