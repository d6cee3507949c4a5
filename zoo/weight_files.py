"""Finding and checking the file of a weight record.

* shipped checkpoints: zoo/weights/, their sha256 checked on every load;
* keras.applications' files: Keras' cache (~/.keras/models), fetched with
  `keras.utils.get_file` and its MD5 when the publisher gives one, so an
  existing Keras cache works offline;
* torchvision and timm files: torch's hub cache (where torchvision and
  timm put them: $TORCH_HOME/hub/checkpoints, ~/.cache/torch/hub/checkpoints)
  or Keras' cache, fetched into Keras' cache otherwise; torchvision's
  sha256 prefix (in the file name) is checked.

A cached file whose hash differs is reported as such, never silently
downloaded again or loaded. Files are read as data only (HDF5 arrays,
never a model config or code): `read_weights`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from zoo.errors import WeightsError
from zoo.weight_records import RECORD_ATTRIBUTE, WeightFile, WeightRecord


def digest(path, algorithm: str = "sha256") -> str:
    value = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            value.update(chunk)
    return value.hexdigest()


def matches(path, expected: str | None) -> tuple[bool, str]:
    """(whether `path` has the hash `expected`, the hash it has)."""
    if expected is None:
        return True, ""
    kind, value = expected.split(":", 1)
    actual = digest(path, "md5" if kind == "md5" else "sha256")
    return (actual.startswith(value) if kind == "sha256-prefix" else actual == value), actual


def keras_cache() -> Path:
    # Private, KERAS_HOME-aware (Keras 3.15.1; tests/test_private_apis.py).
    from keras.src.backend.config import keras_home
    return Path(os.path.expanduser(keras_home())) / "models"


def torch_caches() -> list[Path]:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return [Path(os.path.expanduser(home)) / "hub" / "checkpoints", keras_cache()]


def locate(record: WeightRecord, include_top: bool = True, rows: int | None = None) -> Path:
    """The checked local file of `record` (downloading it where it is
    published and the machine is online); WeightsError otherwise."""
    wanted = record.file_for(include_top, rows)
    if record.source == "shipped":
        return _checked(record.path, wanted, record.full_tag,
                        "reinstall cnn-zoo")
    caches = [keras_cache()] if record.source == "keras.applications" else torch_caches()
    for folder in caches:
        if (folder / wanted.name).is_file():
            return _checked(folder / wanted.name, wanted, record.full_tag,
                            "delete it and copy or download it again")
    return _fetch(record, wanted)


# Files whose hash was checked: (path, size, mtime, hash) -> True, so a
# check before the work and the load itself hash a large file once.
_VERIFIED: dict = {}


def _checked(path: Path, wanted: WeightFile, label: str, remedy: str) -> Path:
    if not path.is_file():
        raise WeightsError(f"Checkpoint file of {label} is missing ({path}); {remedy}.")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, wanted.hash)
    if key in _VERIFIED:
        return path
    ok, actual = matches(path, wanted.hash)
    if not ok:
        kind, expected = wanted.hash.split(":", 1)
        name = "MD5" if kind == "md5" else "sha256"
        raise WeightsError(f"Checksum mismatch for {label}: {path} has {name} "
                           f"{actual}, the publisher's is {expected}; the file is "
                           f"truncated, corrupt or another file: {remedy}.")
    _VERIFIED[key] = True
    return path


def _fetch(record: WeightRecord, wanted: WeightFile) -> Path:
    import keras
    md5 = wanted.hash.split(":", 1)[1] if (wanted.hash or "").startswith("md5:") else None
    try:
        path = Path(keras.utils.get_file(wanted.name, wanted.url, cache_subdir="models",
                                         file_hash=md5))
    except Exception as err:
        where = ", ".join(str(c) for c in
                          ([keras_cache()] if record.source == "keras.applications"
                           else torch_caches()))
        raise WeightsError(f"Could not find {wanted.name} ({record.full_tag}) in "
                           f"{where} nor download it from {wanted.url}: "
                           f"{type(err).__name__}: {str(err)[:200]}. Offline, copy "
                           "the file there first.") from None
    return _checked(path, wanted, record.full_tag, "delete it and download it again")


# --------------------------------------------------------------------------
# Reading files as {layer name: [arrays]}


def _read_legacy_h5(f) -> dict:
    import h5py  # noqa: F401  (f is an open h5py.File)
    group = f["model_weights"] if "model_weights" in f else f
    out = {}
    for raw in group.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        g = group[name]
        weight_names = [w.decode() if isinstance(w, bytes) else str(w)
                        for w in g.attrs.get("weight_names", [])]
        if weight_names:
            out[name] = [np.asarray(g[w]) for w in weight_names]
    return out


def _read_keras3_h5(f) -> dict:
    out = {}
    layers = f["layers"]
    for key in layers:
        vars_group = layers[key].get("vars")
        if vars_group is None or not len(vars_group):
            continue
        name = vars_group.attrs.get("name", key)
        name = name.decode() if isinstance(name, bytes) else str(name)
        out[name] = [np.asarray(vars_group[str(i)]) for i in range(len(vars_group))]
    return out


def read_weights(path) -> dict:
    """Reads a weight file into {layer name: [arrays]} without running code.

    Supports Keras 3 `.weights.h5`, legacy Keras 2 `.h5` (keras.applications)
    and `.keras` archives (only their `model.weights.h5` is read).
    """
    import h5py
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights file {str(path)!r} does not exist.")
    if path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                with tempfile.TemporaryDirectory() as tmp:
                    archive.extract("model.weights.h5", tmp)
                    return read_weights(Path(tmp) / "model.weights.h5")
        except (zipfile.BadZipFile, KeyError, OSError) as err:
            raise WeightsError(f"{path} is not a readable .keras file (truncated "
                               f"or corrupt?): {err}.") from None
    try:
        with h5py.File(path, "r") as f:
            if "layers" in f and "layer_names" not in f.attrs \
                    and "model_weights" not in f:
                return _read_keras3_h5(f)
            if "layer_names" in f.attrs or "model_weights" in f:
                return _read_legacy_h5(f)
    except OSError as err:
        raise WeightsError(f"Cannot read weights file {path}: not a valid HDF5 "
                           f"file (truncated or corrupt?): {err}.") from None
    raise WeightsError(f"{path} is an HDF5 file but holds no Keras weights.")


def file_info(path) -> dict:
    """What a converted weight file records about itself (model,
    preprocessing, source, num_classes), {} for other files."""
    import h5py
    path = Path(path)
    if not path.name.endswith(".h5") or not path.is_file():
        return {}
    try:
        with h5py.File(path, "r") as f:
            return {k[len("zoo_"):]: (v.item() if hasattr(v, "item") else str(v))
                    for k, v in f.attrs.items()
                    if k.startswith("zoo_") and k != RECORD_ATTRIBUTE}
    except OSError:
        return {}
