"""A quiet TensorFlow start-up for the `zoo` command line.

Importing TensorFlow prints C++ log lines (oneDNN, CUDA stubs, CPU
features) before its logging is configured, so `TF_CPP_MIN_LOG_LEVEL`
alone does not hide them. When the process is the `zoo` command line
(`zoo ...` or `python -m zoo.cli ...`), `zoo/__init__` calls `quiet_import`
before Keras imports TensorFlow: the log level is raised and what the import
writes to the stderr file descriptor is dropped — or shown, if the import
fails. `--verbose` or `ZOO_DEBUG=1` keep TensorFlow's output. A library user
(`import zoo`) gets TensorFlow's default behaviour.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


def running_command_line() -> bool:
    """True when this process is `zoo ...` or `python -m zoo.cli|zoo.demo`."""
    argv = getattr(sys, "orig_argv", sys.argv)
    if sys.argv and os.path.basename(sys.argv[0]) in ("zoo", "zoo.exe"):
        return True
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1] in ("zoo.cli", "zoo.demo")
    return False


# The Keras backends `--backend` accepts: the ones the test suite runs on.
BACKENDS = ("tensorflow", "jax")


def backend_option(argv=None):
    """The value of `--backend NAME` (or `--backend=NAME`) in `argv`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


# The backends Keras 3 itself knows (KERAS_BACKEND); BACKENDS are the tested ones.
KERAS_BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")


def apply_backend_option():
    """On the command line, `--backend NAME` sets KERAS_BACKEND before Keras
    is imported (it wins over the environment variable). An unknown name is
    left to the argument parser, which names the choices. An unknown
    KERAS_BACKEND is refused here, by name, instead of Keras' import
    traceback: on the command line as a usage error (exit 2), in Python as
    an InputError."""
    name = backend_option() if running_command_line() else None
    if name in BACKENDS:
        os.environ["KERAS_BACKEND"] = name
    wanted = os.environ.get("KERAS_BACKEND")
    if wanted and wanted not in KERAS_BACKENDS and "keras" not in sys.modules:
        message = (f"KERAS_BACKEND={wanted!r} is not a Keras backend; set it to "
                   f"{' or '.join(BACKENDS)} (the tested ones), or unset it.")
        if running_command_line():
            print(f"zoo: error: {message}", file=sys.stderr)
            sys.exit(2)
        from zoo.errors import InputError
        raise InputError(message)


def quiet() -> bool:
    """Whether native start-up output is hidden in this process."""
    return running_command_line() and not os.environ.get("ZOO_DEBUG") \
        and "--verbose" not in sys.argv


@contextlib.contextmanager
def native_stderr_hidden():
    """Drops what native code (TensorFlow, the LiteRT converter and
    interpreter) writes to file descriptor 2 inside the block, when `quiet()`;
    if the block raises, that output is shown after all."""
    if not quiet():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_import():
    """Imports TensorFlow silently when running as the command line."""
    if not quiet() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_hidden():
        import tensorflow  # noqa: F401
