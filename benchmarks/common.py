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


def markdown_option(parser):
    """--markdown JSON: print the tables of a saved --json result and exit.
    The measured tables of docs/ are printed this way from the JSON files
    in docs/tables/ (tests/test_benchmarks.py compares them)."""
    parser.add_argument("--markdown", metavar="JSON",
                        help="print the tables of a result saved with --json, "
                             "without measuring anything")


def parse(parser, markdown, argv=None):
    """Adds --json and --markdown to a script's parser and parses; with
    --markdown prints the saved result's tables (`markdown(result)`) and
    returns None, else the arguments."""
    parser.add_argument("--json", help="also write the result here")
    markdown_option(parser)
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(saved(args.markdown)))
        return None
    return args


def saved(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def machine_line(info: dict) -> str:
    """"Intel(R) Xeon(R) Processor, 2 cores (avx512_bf16, amx_bf16), TensorFlow 2.21.0, Python 3.11.7"."""
    flags = ", ".join(f for f in info.get("cpu_flags", ()) if "bf16" in f) or "no bf16"
    return (f"{info['cpu']}, {info['cores']} cores ({flags}), TensorFlow "
            f"{info['tensorflow']}, Python {info['python']}")


def dump(path, data):
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=2, default=str)
