"""The in-memory sources of `zoo.data.load` read into NumPy arrays:
scikit-learn's digits (embedded), MNIST and Fashion-MNIST IDX files,
CIFAR's binary archives and `.npz` files (never pickles); and
`check_source`, which validates any source string without reading it."""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data_checks import DataError, check_array_data
from zoo.errors import did_you_mean, require
from zoo.folders import check_folder


SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100")
PREFIXES = ("folder:", "npz:", "tfds:")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog",
                   "frog", "horse", "ship", "truck"]
_KERAS_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass
class Arrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    allow_flip: bool = True


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"Cannot read IDX file {path}: {err}.") from None
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise DataError(f"{path} is not an unsigned-byte IDX file.")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise DataError(f"{path} is truncated or corrupt: expected {expected} "
                        f"values for shape {tuple(dims)}, found {len(data) - offset}.")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _find(data_dir: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    return None


def _idx_from_dir(data_dir: Path):
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    paths = [_find(data_dir, s) for s in stems]
    if any(p is None for p in paths):
        return None
    xtr, ytr, xte, yte = (_read_idx(p) for p in paths)
    return xtr[..., None], ytr, xte[..., None], yte


def _offline_hint(name, flag_example):
    return (f"Could not find or download {name}. Offline, pass --data-dir "
            f"(data_dir=) with the files, e.g. {flag_example}, or use "
            "'digits' (embedded) or 'npz:PATH'.")


def _mnist_like(name: str, data_dir):
    if data_dir is not None:
        found = _idx_from_dir(Path(data_dir))
        if found is None:
            npz = Path(data_dir) / f"{name}.npz"
            if npz.is_file():
                return npz_arrays(npz)[:4]
            raise DataError(f"No {name} IDX files (train-images-idx3-ubyte[.gz], "
                            f"...) or {name}.npz in {data_dir}.")
        return found
    import keras
    loader = getattr(keras.datasets, name)
    try:
        (xtr, ytr), (xte, yte) = loader.load_data()
    except Exception as err:  # network errors come in many types
        example = ("/usr/share/datasets/fashion-mnist (apt-get install "
                   "dataset-fashion-mnist)" if name == "fashion_mnist"
                   else "a folder with the four IDX files")
        raise DataError(f"{_offline_hint(name, example)} ({type(err).__name__}: "
                        f"{str(err)[:200]})") from None
    return xtr[..., None], ytr, xte[..., None], yte


def _cifar_binary(files, label_bytes, label_index):
    record = label_bytes + 3072
    xs, ys = [], []
    for path in files:
        raw = np.fromfile(path, np.uint8)
        if raw.size % record:
            raise DataError(f"{path} is truncated or corrupt (size {raw.size} is "
                            f"not a multiple of {record}).")
        raw = raw.reshape(-1, record)
        ys.append(raw[:, label_index])
        xs.append(raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(xs), np.concatenate(ys)
# The MD5s the CIFAR page publishes for its binary archives.
CIFAR_MD5 = {"cifar10": "c32a1d4ab5d03f1284b67883e8d87530",
             "cifar100": "03b5dce01913d631647c71ecec9e9cb8"}


def _cifar(name: str, data_dir):
    is10 = name == "cifar10"
    folder = "cifar-10-batches-bin" if is10 else "cifar-100-binary"
    if data_dir is None:
        import keras
        archive = ("cifar-10-binary.tar.gz" if is10 else "cifar-100-binary.tar.gz")
        try:
            path = keras.utils.get_file(
                archive, f"https://www.cs.toronto.edu/~kriz/{archive}",
                file_hash=CIFAR_MD5[name], extract=True)
        except Exception as err:
            raise DataError(f"{_offline_hint(name, 'a folder with ' + folder)} "
                            f"({type(err).__name__})") from None
        data_dir = Path(path)
    data_dir = Path(data_dir)
    npz = data_dir / f"{name}.npz"
    if npz.is_file():
        return npz_arrays(npz)[:4]
    root = data_dir / folder if (data_dir / folder).is_dir() else data_dir
    if is10:
        train = sorted(root.glob("data_batch_*.bin"))
        test = [root / "test_batch.bin"]
        label_bytes, label_index = 1, 0
    else:
        train, test = [root / "train.bin"], [root / "test.bin"]
        label_bytes, label_index = 2, 1      # (coarse, fine) labels
    if not train or not all(p.is_file() for p in train + test):
        raise DataError(f"No {name} binary files ({folder}) or {name}.npz in "
                        f"{data_dir}.")
    xtr, ytr = _cifar_binary(train, label_bytes, label_index)
    xte, yte = _cifar_binary(test, label_bytes, label_index)
    return xtr, ytr, xte, yte


def npz_arrays(path):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"No such file: {path}.")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a NumPy .npz archive (write one with "
                        "np.savez(path, x_train=..., y_train=..., x_test=..., "
                        "y_test=...)).")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test")
                       if k not in f.files]
            if missing:
                raise DataError(f"{path} lacks arrays {', '.join(missing)}; it "
                                "needs x_train, y_train, x_test, y_test.")
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
            names = [str(n) for n in f["class_names"]] if "class_names" in f.files else None
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"Cannot read {path} as .npz: {err}.") from None
    xtr, ytr, xte, yte = arrays
    if xtr.ndim == 3:
        xtr, xte = xtr[..., None], xte[..., None]
    if xtr.ndim != 4 or xte.ndim != 4:
        raise DataError(f"{path}: x_train/x_test must be (n, h, w[, c]) images; "
                        f"got {xtr.shape} and {xte.shape}.")
    return xtr, ytr, xte, yte, names     # labels checked by check_array_data


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0,
                                          stratify=y)
    return xtr, ytr, xte, yte


def read_arrays(source: str, data_dir) -> Arrays:
    if source == "digits":
        return Arrays(*_digits(), [str(i) for i in range(10)], allow_flip=False)
    if source in ("mnist", "fashion_mnist"):
        xtr, ytr, xte, yte = _mnist_like(source, data_dir)
        names = FASHION_CLASSES if source == "fashion_mnist" else [str(i) for i in range(10)]
        return Arrays(xtr, ytr, xte, yte, names, allow_flip=source != "mnist")
    if source in ("cifar10", "cifar100"):
        xtr, ytr, xte, yte = _cifar(source, data_dir)
        names = CIFAR10_CLASSES if source == "cifar10" else [str(i) for i in range(100)]
        return Arrays(xtr, ytr, xte, yte, names)
    xtr, ytr, xte, yte, names = npz_arrays(source[len("npz:"):])
    xtr, ytr, xte, yte = check_array_data(xtr, ytr, xte, yte, source)
    num = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
    return Arrays(xtr, ytr, xte, yte, names or [str(i) for i in range(num)])


def check_source(source, data_dir=None) -> str:
    """Validates a source string (and data_dir) without loading anything."""
    if not isinstance(source, str) or not source:
        raise DataError(f"Dataset source must be a string; got {source!r}.")
    if source in SOURCES:
        if data_dir is not None and not Path(data_dir).is_dir():
            raise DataError(f"--data-dir {str(data_dir)!r} does not exist or is "
                            "not a folder.")
        return source
    prefix = next((p for p in PREFIXES if source.startswith(p)), None)
    if prefix is None:
        hint = did_you_mean(source, SOURCES, n=2)
        raise DataError(f"Unknown dataset {source!r}.{hint} Use one of "
                        f"{', '.join(SOURCES)}, or folder:PATH, npz:PATH, tfds:NAME.")
    rest = source[len(prefix):]
    if not rest:
        raise DataError(f"{prefix} needs a value, e.g. {prefix}my_images.")
    if prefix == "folder:":
        check_folder(Path(rest))
    elif prefix == "npz:" and not Path(rest).is_file():
        raise DataError(f"No such .npz file: {rest}.")
    elif prefix == "tfds:":
        require("tensorflow_datasets", "tfds: sources need TensorFlow Datasets: "
                                       "pip install 'cnn-zoo[tfds]'.", DataError)
    return source
