"""Atomic file output: write to a temporary file, then rename over the target.

A crash, a kill or a full disk in the middle of writing leaves the previous
file untouched; readers never see a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

from zoo.errors import InputError


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it over `path` on success.

    The temporary name keeps the suffix (Keras picks the format from it).

    Example:
        >>> with atomic_path("out/model.keras") as tmp:
        ...     model.save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix="".join(path.suffixes)
                               or ".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)      # let the writer create it (some refuse to overwrite)
    try:
        yield tmp
        if os.path.isdir(tmp):
            # Directories (SavedModel) cannot be renamed over an existing one.
            if path.exists():
                import shutil
                backup = f"{tmp}.old"
                os.replace(path, backup)
                os.replace(tmp, path)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                os.replace(tmp, path)
        else:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)


# The member of a `.keras` archive that holds a zoo model's build options
# (zoo.factory.recorded). Keras' loader reads only its own members, so the
# file loads with plain `keras.saving.load_model` where zoo is not installed.
OPTIONS_MEMBER = "zoo_options.json"


def save_model(model, path) -> Path:
    """Writes `model` to the `.keras` file `path` atomically, with its build
    options (`model.zoo_options`, when it has them) in the archive.

    The model is a plain functional `keras.Model`, so the file loads with
    `keras.saving.load_model(path)` (safe mode on) in any Keras 3; zoo's
    loader (`zoo.inference.load_keras`) puts the options back.

    Example:
        >>> save_model(zoo.create_model("resnet20"), "out/model.keras")
    """
    options = getattr(model, "zoo_options", None)
    portable = _portable_compile_config(model)
    with atomic_path(path) as tmp:
        if portable is None:
            model.save(tmp)
        else:
            # Keras' saver asks the model for its compile config.
            model.get_compile_config = lambda: portable
            try:
                model.save(tmp)
            finally:
                del model.get_compile_config
        if options:
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(OPTIONS_MEMBER, json.dumps(dict(options), sort_keys=True))
    return Path(path)


def _portable_compile_config(model) -> dict | None:
    """The compile config to save where Keras' own would not load without
    zoo, else None: a learning-rate schedule of this package (the recipe's
    zoo.optim.WarmupLinearDecay) is written as the rate it has reached (0
    at the end of a run), so that plain Keras rebuilds the optimizer. The
    schedule itself is in the run's config.json; zoo loads models without
    compiling them."""
    config = model.get_compile_config() if getattr(model, "compiled", False) else None
    optimizer = (config or {}).get("optimizer")
    # (Under mixed precision too this is the optimizer given to compile,
    # not Keras' LossScaleOptimizer around it.)
    rate = optimizer["config"].get("learning_rate") if isinstance(optimizer, dict) else None
    if not isinstance(rate, dict) or str(rate.get("module", "")).startswith("keras."):
        return None
    optimizer["config"]["learning_rate"] = float(model.optimizer.learning_rate)
    return config


def saved_options(path) -> dict | None:
    """The build options saved with a `.keras` file (None without them)."""
    with zipfile.ZipFile(path) as archive:
        if OPTIONS_MEMBER not in archive.namelist():
            return None
        return json.loads(archive.read(OPTIONS_MEMBER))


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return Path(path)


def write_json(path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True,
                                       default=str) + "\n")


def check_writable_dir(path) -> Path:
    """Creates `path` if needed and checks that files can be written there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"Output folder {str(path)!r} is a file; choose a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test.") as probe:
            probe.write(b"x")
            probe.flush()
    except OSError as err:
        raise InputError(f"Output folder {str(path)!r} is not writable "
                         f"({err.strerror or err}); choose another --out.") from None
    return path
