"""Datasets as `tf.data` pipelines: one entry point, `zoo.data.load`.

Sources:

* ``digits`` – scikit-learn's 8×8 handwritten digits (1,797 images, embedded,
  offline); a fixed stratified 20 % test split.
* ``mnist``, ``fashion_mnist`` – IDX files (``*-idx3-ubyte[.gz]``) in
  ``data_dir`` (Debian's ``dataset-fashion-mnist`` installs them in
  /usr/share/datasets/fashion-mnist), else keras.datasets' cache, else a
  download through Keras.
* ``cifar10``, ``cifar100`` – the binary version of the dataset
  (``cifar-10-batches-bin``/``cifar-100-binary``) or an ``.npz`` in
  ``data_dir``, else a download of the binary archive through Keras.  The
  Python version (pickles) is never read.
* ``folder:PATH`` – one sub-folder per class (Keras'
  image_dataset_from_directory); ``PATH/train`` + ``PATH/test`` are used as
  the splits when present.
* ``npz:PATH`` – arrays ``x_train, y_train, x_test, y_test``.
* ``tfds:NAME`` – TensorFlow Datasets, when installed (extra ``tfds``).

Splits are deterministic: the validation split is drawn (stratified) from
the training data with `seed`; the test split never changes.
"""

from __future__ import annotations

import gzip
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo import augment as augment_lib
from zoo import preprocessing
from zoo.data_checks import (DataError, check_array_data, check_image_files,
                              check_labels, undecodable)
from zoo.errors import check_positive_int, did_you_mean, require

SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100")
PREFIXES = ("folder:", "npz:", "tfds:")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog",
                   "frog", "horse", "ship", "truck"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# A folder's decoded training images are kept in memory up to this size;
# larger folders are read from disk on every pass (docs/training.md).
FOLDER_CACHE_BYTES = 512 << 20
# The shuffle buffer of a streamed (too large for memory) TFDS dataset.
TFDS_SHUFFLE_BYTES = 256 << 20
_KERAS_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass
class DatasetInfo:
    """What the pipelines hold.

    Attributes:
        name: the source string.
        class_names: list of class names (index = label).
        image_shape: (height, width, channels) the pipelines yield.
        source_shape: (height, width, channels) of the stored images.
        num_train, num_val, num_test: examples per split.
        preprocessing: scaling mode applied (see zoo.preprocessing).
        allow_flip: whether mirroring keeps the class (False for digits).
        test_is_validation: True when the source has no separate test split.
    """

    name: str
    class_names: list
    image_shape: tuple
    source_shape: tuple
    num_train: int
    num_val: int
    num_test: int
    preprocessing: str
    allow_flip: bool = True
    test_is_validation: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["num_classes"] = self.num_classes
        return d


@dataclass
class Data:
    """Train / validation / test pipelines of (images, int labels) batches."""

    train: object
    val: object
    test: object
    info: DatasetInfo
    augmenter: object = field(default=None, repr=False)
    raw_sample: tuple = field(default=None, repr=False)
    # The number of the next pass over the training set (a tf.Variable; see
    # `_training_stream`). `zoo.training` sets it when a run resumes.
    train_pass: object = field(default=None, repr=False)


# --------------------------------------------------------------------------
# Raw arrays


@dataclass
class _Arrays:
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
                return _npz_arrays(npz)[:4]
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
        return _npz_arrays(npz)[:4]
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


def _npz_arrays(path):
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


def _arrays(source: str, data_dir) -> _Arrays:
    if source == "digits":
        return _Arrays(*_digits(), [str(i) for i in range(10)], allow_flip=False)
    if source in ("mnist", "fashion_mnist"):
        xtr, ytr, xte, yte = _mnist_like(source, data_dir)
        names = FASHION_CLASSES if source == "fashion_mnist" else [str(i) for i in range(10)]
        return _Arrays(xtr, ytr, xte, yte, names, allow_flip=source != "mnist")
    if source in ("cifar10", "cifar100"):
        xtr, ytr, xte, yte = _cifar(source, data_dir)
        names = CIFAR10_CLASSES if source == "cifar10" else [str(i) for i in range(100)]
        return _Arrays(xtr, ytr, xte, yte, names)
    xtr, ytr, xte, yte, names = _npz_arrays(source[len("npz:"):])
    xtr, ytr, xte, yte = check_array_data(xtr, ytr, xte, yte, source)
    num = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
    return _Arrays(xtr, ytr, xte, yte, names or [str(i) for i in range(num)])


# --------------------------------------------------------------------------
# Checks


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
        _check_folder(Path(rest))
    elif prefix == "npz:" and not Path(rest).is_file():
        raise DataError(f"No such .npz file: {rest}.")
    elif prefix == "tfds:":
        require("tensorflow_datasets", "tfds: sources need TensorFlow Datasets: "
                                       "pip install 'cnn-zoo[tfds]'.", DataError)
    return source


def _class_dirs(path: Path):
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_folder(path: Path):
    if not path.is_dir():
        raise DataError(f"Image folder {str(path)!r} does not exist.")
    roots = [path / "train", path / "test"] if (path / "train").is_dir() \
        and (path / "test").is_dir() else [path]
    for root in roots:
        classes = _class_dirs(root)
        if len(classes) < 2:
            raise DataError(f"{root} needs one sub-folder per class and at least "
                            f"two classes; found {len(classes)}.")
        empty = [c.name for c in classes
                 if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in c.iterdir())]
        if empty:
            raise DataError(f"Class folder(s) without images in {root}: "
                            f"{', '.join(empty)}.")


# --------------------------------------------------------------------------
# Pipelines


def _split(x, y, validation_split, seed, fold=None):
    """Stratified train/validation split: every class in both parts. With
    `fold=(i, k)`, the split is fold i of a stratified k-fold partition."""
    if fold is not None:
        return _fold_split(x, y, fold, seed)
    if not validation_split:
        return x, y, x[:0], y[:0]
    from sklearn.model_selection import train_test_split
    counts = np.bincount(y.astype(np.int64))
    single = np.flatnonzero(counts == 1)
    if len(single):
        raise DataError(
            f"Class(es) {', '.join(map(str, single[:10]))} have a single training "
            "image: a stratified validation split needs at least two per class "
            "(one to train on, one to validate). Add images, drop those "
            "classes, or pass validation_split 0 (--validation-split 0).")
    classes = int((counts > 0).sum())
    n_val = max(int(np.ceil(validation_split * len(y))), classes)
    if len(y) - n_val < classes:
        raise DataError(f"{len(y)} training images cannot hold {classes} classes in "
                        f"both a training and a validation part; lower "
                        f"validation_split ({validation_split}).")
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=n_val, random_state=seed,
                                          stratify=y)
    return xtr, ytr, xva, yva


def _fold_split(x, y, fold, seed):
    """Fold i of scikit-learn's stratified k-fold partition (shuffled with
    `seed`): the other k - 1 folds train, fold i validates. The k
    validation parts cover every training image exactly once."""
    from sklearn.model_selection import StratifiedKFold
    i, k = fold
    counts = np.bincount(np.asarray(y).astype(np.int64))
    present = np.flatnonzero(counts)
    smallest = present[np.argmin(counts[present])]
    if counts[smallest] < k:
        raise DataError(f"{k}-fold cross-validation needs at least {k} training "
                        f"images of every class; class {smallest} has "
                        f"{counts[smallest]}. Use fewer folds (--folds).")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    train, val = list(folds.split(np.zeros(len(y)), y))[i]
    return x[train], y[train], x[val], y[val]


def _prepare_fn(image_shape, source_shape):
    import tensorflow as tf
    h, w, c = image_shape

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if x.shape[-1] != c:
            x = (tf.image.grayscale_to_rgb(x) if c == 3 and x.shape[-1] == 1
                 else tf.image.rgb_to_grayscale(x) if c == 1 and x.shape[-1] == 3
                 else tf.repeat(tf.reduce_mean(x, -1, keepdims=True), c, -1))
        if (h, w) != tuple(source_shape[:2]):
            x = tf.image.resize(x, (h, w))
        return x, tf.cast(y, tf.int32)
    return prepare


def _pipeline(ds, *, prepare, batch_size, mode, cache, shard=None):
    """A validation or test pipeline: prepared, batched, scaled, in order.

    With `shard=(i, n)` (multi-process training) it yields (images, labels,
    weights): process i's n-th of every global batch. The data are padded
    to a multiple of n with (at most n - 1) images of weight 0, so that every
    process runs the same number of equal batches and weighted metrics
    count each image once.
    """
    import tensorflow as tf
    autotune = tf.data.AUTOTUNE
    ds = ds.map(prepare, num_parallel_calls=autotune)
    if cache:
        ds = ds.cache()
    if shard is not None:
        i, n = shard
        pad = -int(ds.cardinality()) % n
        ds = ds.map(lambda x, y: (x, y, tf.constant(1.0)))
        ds = ds.concatenate(ds.repeat().take(pad).map(
            lambda x, y, w: (x, y, tf.constant(0.0))))

        def local(x, y, w):
            part = tf.shape(y)[0] // n
            lo, hi = i * part, (i + 1) * part
            return preprocessing.scale(x[lo:hi], mode), y[lo:hi], w[lo:hi]
        return ds.batch(batch_size).map(local, num_parallel_calls=autotune) \
            .prefetch(autotune)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (preprocessing.scale(x, mode), y),
                num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _local_slice(batch_size, shard):
    """The part [lo, hi) of a global batch that process `shard[0]` of
    `shard[1]` trains on."""
    i, n = shard
    local = batch_size // n
    return i * local, (i + 1) * local


def _batched_indices(order, batch_size, shard=None):
    """Batches of example indices; with `shard`, this process's part of each
    global batch (a last partial global batch is dropped, so that every
    process runs the same steps)."""
    if shard is None:
        return order.batch(batch_size)
    lo, hi = _local_slice(batch_size, shard)
    return order.batch(batch_size, drop_remainder=True).map(lambda i: i[lo:hi])


def _training_stream(one_pass, size, *, batch_size, seed, augmenter, mode,
                     shard=None):
    """The training pipeline: one pass over the `size` training examples
    each time it is iterated, returned with its pass counter.

    `one_pass(p)` gives pass p's prepared (image, label) batches in an order
    drawn from p and the seed alone (`_permuted`, or a seeded shuffle buffer
    for streamed tfds data); batch b of pass p is augmented with the seed
    (seed, p × batches per pass + b). So the batches are a function of
    (seed, pass) only. Each new iterator takes the next pass number from the
    counter (a tf.Variable), so epochs reshuffle as usual; a run resumed at
    epoch k sets it to k's first pass and sees the batches an uninterrupted
    run would (`zoo.training` does this).
    """
    import tensorflow as tf
    autotune = tf.data.AUTOTUNE
    counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_pass")
    steps = size // batch_size if shard is not None else -(-size // batch_size)
    generators = augment_lib.seed_generators(augmenter)

    def numbered(p):
        return one_pass(p).enumerate().map(
            lambda b, xy: (p * steps + b, xy[0], xy[1]))

    ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
        lambda _: counter.assign_add(1) - 1).flat_map(numbered)
    if augmenter is not None:
        def augment(index, x, y):
            augment_lib.reseed(generators, seed, index)
            return index, augmenter(x, training=True), y
        # Sequential on purpose: the layers share the generators' state.
        ds = ds.map(augment)
    ds = ds.map(lambda index, x, y: (preprocessing.scale(x, mode), y),
                num_parallel_calls=autotune)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(autotune), counter


def _permuted(fetch, size, seed):
    """`one_pass` for sources read by index: pass p visits the examples in the
    order of a permutation drawn from the stateless seed (seed, p) — a full
    shuffle without a shuffle buffer. `fetch(indices)` maps a dataset of
    example indices to prepared (image, label) batches."""
    import tensorflow as tf
    seed = tf.constant(seed, tf.int64)

    def one_pass(p):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(size, dtype=tf.int64), seed=tf.stack([seed, p]))
        return fetch(tf.data.Dataset.from_tensor_slices(order))
    return one_pass


def _array_fetch(x, y, prepare, batch_size, shard=None):
    """`fetch` for in-memory arrays (NumPy, or a folder's images already in
    a tf.Variable): batches gathered by index."""
    import tensorflow as tf
    with tf.device("CPU"):
        images = x if isinstance(x, tf.Variable) else tf.Variable(
            x, trainable=False, name="train_images")
        labels = tf.Variable(y, trainable=False, name="train_labels")
    return lambda order: _batched_indices(order, batch_size, shard).map(
        lambda i: prepare(tf.gather(images, i), tf.gather(labels, i)),
        num_parallel_calls=tf.data.AUTOTUNE)


def _check_part(value, name, wording, least):
    """`value` is None or (i, n) with n >= `least` and 0 <= i < n."""
    if value is None:
        return
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    if not ok or value[1] < least or not 0 <= value[0] < value[1]:
        raise DataError(f"{name} must be {wording}; got {value!r}.")


def _check_fold(fold):
    _check_part(fold, "fold", "(i, k) with k >= 2 and 0 <= i < k", 2)


def check_shard(shard, batch_size):
    _check_part(shard, "shard", "(i, n) with 0 <= i < n", 1)
    if shard is None:
        return
    if batch_size % shard[1]:
        raise DataError(f"The global batch size {batch_size} must be a multiple of "
                        f"the {shard[1]} processes, so that each takes an equal part; "
                        f"use --batch-size {batch_size - batch_size % shard[1] or shard[1]}.")


def _check_arguments(source, data_dir, mode, batch_size, validation_split, channels,
                     image_size, augment, augment_knobs, fold=None, shard=None,
                     limit=None):
    """`load`'s checks, before anything is read; returns the checked source
    and image_size as (h, w) or None."""
    source = check_source(source, data_dir)
    preprocessing.check_mode(mode)
    check_positive_int(batch_size, "batch_size", DataError)
    if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
        raise DataError("validation_split must be in [0, 1); got "
                        f"{validation_split!r}.")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3; got {channels!r}.")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise DataError(f"image_size must be a positive int or (h, w); got {image_size!r}.")
    augment_lib.resolve(augment, **(augment_knobs or {}))
    _check_fold(fold)
    check_shard(shard, batch_size)
    if limit is not None:
        check_positive_int(limit, "limit", DataError)
    return source, image_size


def load(source="digits", *, data_dir=None, image_size=None, channels=None,
         batch_size=64, validation_split=0.1, augment="none", seed=0,
         preprocessing_mode="unit", cache=True, limit=None,
         augment_knobs=None, fold=None, shard=None) -> Data:
    """Loads a dataset as train/validation/test `tf.data` pipelines.

    Args:
        source: "digits", "mnist", "fashion_mnist", "cifar10", "cifar100",
            "folder:PATH", "npz:PATH" or "tfds:NAME".
        data_dir: folder holding the files of a named dataset.
        image_size, channels: int or (h, w), and 1 or 3, to convert to
            (default: as stored).
        batch_size, validation_split: of all three pipelines; the fraction
            of the training data held out.
        augment: preset name or dict of knobs (see zoo.augment).
        seed: seeds the validation split, shuffling and augmentation.
        preprocessing_mode: "unit", "tf", "caffe", "torch" or "raw".
        cache: keep prepared images in memory (a folder's training images
            only while they fit FOLDER_CACHE_BYTES; docs/training.md).
        limit: keep at most this many training examples (quick runs).
        augment_knobs: dict of individual augmentation knobs.
        fold: (i, k): validate on fold i of a stratified, seeded k-fold
            partition instead of `validation_split` (in-memory and folder
            sources).
        shard: (i, n) for process i of an n-process data-parallel run
            (zoo.distributed): process i's n-th of each global batch of
            `batch_size` (see `_pipeline`). In-memory and folder sources.

    Returns:
        Data with `.train`, `.val`, `.test` and `.info`.

    Example:
        >>> data = zoo.data.load("digits", image_size=16, batch_size=32)
        >>> data.info.num_classes
        10
    """
    source, image_size = _check_arguments(
        source, data_dir, preprocessing_mode, batch_size, validation_split, channels,
        image_size, augment, augment_knobs, fold, shard, limit)
    common = dict(image_size=image_size, channels=channels, batch_size=batch_size,
                  validation_split=validation_split, augment=augment,
                  augment_knobs=augment_knobs, seed=seed)
    if source.startswith("folder:"):
        return _load_folder(source, mode=preprocessing_mode, cache=cache, fold=fold,
                            shard=shard, limit=limit, **common)
    if source.startswith("tfds:"):
        builder = _tfds_builder(source[len("tfds:"):], data_dir)
        if not _tfds_fits(builder):
            _check_streamable(source, fold, shard)
            return _load_tfds_stream(source, builder, mode=preprocessing_mode,
                                     limit=limit, **common)
        arrays = _tfds_arrays(builder)
    else:
        arrays = _arrays(source, data_dir)
    return _load_arrays(arrays, source, preprocessing_mode=preprocessing_mode,
                        cache=cache, limit=limit, fold=fold, shard=shard, **common)


def _check_streamable(source, fold, shard):
    if fold is not None or shard is not None:
        raise DataError(f"{source} is too large to hold in memory and is "
                        "streamed; k-fold cross-validation and multi-process "
                        "training need an in-memory or folder dataset.")


def _check_arrays(arrays, source):
    """Labels in range, non-empty splits and at least two classes."""
    (arrays.x_train, arrays.y_train, arrays.x_test,
     arrays.y_test) = check_array_data(arrays.x_train, arrays.y_train, arrays.x_test,
                                       arrays.y_test, source)
    num_classes = len(arrays.class_names)
    check_labels(arrays.y_train, num_classes, f"{source} (train)")
    check_labels(arrays.y_test, num_classes, f"{source} (test)")
    if len(arrays.x_train) == 0 or len(arrays.x_test) == 0:
        raise DataError(f"{source} has an empty train or test split.")
    if len(np.unique(arrays.y_train)) < 2:
        raise DataError(f"{source} has a single class in its training data; "
                        "classification needs at least two.")


def _load_arrays(arrays, source, *, image_size, channels, batch_size,
                 validation_split, augment, augment_knobs, seed, preprocessing_mode,
                 cache, limit, fold, shard) -> Data:
    """`load` for in-memory sources (named datasets, npz, small TFDS sets)."""
    _check_arrays(arrays, source)
    xtr, ytr, xva, yva = _split(arrays.x_train, arrays.y_train,
                                validation_split, seed, fold)
    if limit:
        xtr, ytr = xtr[:limit], ytr[:limit]
    source_shape = tuple(int(d) for d in arrays.x_train.shape[1:])
    image_shape = (*(image_size or source_shape[:2]), channels or source_shape[2])
    import tensorflow as tf
    augmenter = augment_lib.build_augmenter(
        augment, image_shape=image_shape, seed=seed,
        allow_flip=arrays.allow_flip, **(augment_knobs or {}))
    prepare = _prepare_fn(image_shape, source_shape)
    common = dict(prepare=prepare, batch_size=batch_size, mode=preprocessing_mode,
                  cache=cache, shard=shard)
    train, counter = _training_stream(
        _permuted(_array_fetch(xtr, ytr, prepare, batch_size, shard), len(xtr), seed),
        len(xtr), batch_size=batch_size, seed=seed, augmenter=augmenter,
        mode=preprocessing_mode, shard=shard)
    val = _pipeline(tf.data.Dataset.from_tensor_slices((xva, yva)), **common)
    test = _pipeline(tf.data.Dataset.from_tensor_slices((arrays.x_test, arrays.y_test)),
                     **common)
    info = DatasetInfo(
        name=source, class_names=list(arrays.class_names), image_shape=image_shape,
        source_shape=source_shape, num_train=len(xtr), num_val=len(xva),
        num_test=len(arrays.x_test), preprocessing=preprocessing_mode,
        allow_flip=arrays.allow_flip)
    sample = prepare(xtr[:32], ytr[:32])
    return Data(train, val if len(xva) else None, test, info, augmenter,
                (np.asarray(sample[0]), np.asarray(sample[1])), counter)


def _tfds_builder(name, data_dir):
    """The prepared TensorFlow Datasets builder of `name` (downloaded and
    prepared by TFDS when needed)."""
    import tensorflow_datasets as tfds
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        builder.download_and_prepare()
    except Exception as err:
        raise DataError(f"TensorFlow Datasets could not load {name!r}: {err}") from None
    missing = {"train", "test"} - set(builder.info.splits)
    features = builder.info.features
    if missing or "image" not in features or "label" not in features:
        raise DataError(f"tfds:{name} needs 'train' and 'test' splits of 'image' and "
                        f"'label' features; it has splits {sorted(builder.info.splits)} "
                        f"and features {sorted(features)}.")
    return builder


def _tfds_fits(builder) -> bool:
    """Whether the training split, decoded, fits FOLDER_CACHE_BYTES (so it
    is loaded into memory like any array source); otherwise it is streamed."""
    shape = builder.info.features["image"].shape
    if None in shape:
        return False
    return builder.info.splits["train"].num_examples * int(np.prod(shape)) \
        <= FOLDER_CACHE_BYTES


def _tfds_arrays(builder):
    import tensorflow_datasets as tfds
    train, test = (tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True,
                                                    batch_size=-1))
                   for split in ("train", "test"))
    names = builder.info.features["label"].names
    return _Arrays(np.asarray(train[0]), np.asarray(train[1]),
                   np.asarray(test[0]), np.asarray(test[1]), list(names))


def _load_tfds_stream(source, builder, *, image_size, channels, batch_size,
                      validation_split, augment, augment_knobs, seed, mode, limit=None):
    """A TFDS dataset too large for memory, streamed from its files: the
    validation part is the first `validation_split` of the training split
    (file order, not stratified), and each pass is shuffled in windows of
    TFDS_SHUFFLE_BYTES, seeded with (seed, pass)."""
    import tensorflow as tf
    stored = tuple(builder.info.features["image"].shape)
    if image_size is None and None in stored[:2]:
        raise DataError(f"{source} has images of varying size {stored}; pass "
                        "image_size (--image-size).")
    image_shape = (*(image_size or stored[:2]), channels or stored[2])
    prepare = _prepare_fn(image_shape, stored)
    n = builder.info.splits["train"].num_examples
    n_val = int(np.ceil(validation_split * n)) if validation_split else 0

    def split(name):
        return builder.as_dataset(split=name, as_supervised=True, shuffle_files=False)
    n_train = n - n_val if not limit else min(limit, n - n_val)
    train = split(f"train[{n_val}:{n_val + n_train}]")
    buffer = max(1, TFDS_SHUFFLE_BYTES // (int(np.prod(image_shape)) * 4))

    def one_pass(p):
        # A bounded shuffle that is a function of (seed, pass) alone: each
        # window of `buffer` prepared images is permuted with the stateless
        # seed (seed, p, window). (Dataset.shuffle with a per-pass tensor
        # seed fails once a global TensorFlow seed is set, as zoo train sets.)
        def permute(window, xy):
            x, y = xy
            order = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(y)[0]),
                seed=tf.stack([tf.constant(seed, tf.int64), p * 1_000_003 + window]))
            return tf.data.Dataset.from_tensor_slices((tf.gather(x, order),
                                                       tf.gather(y, order)))
        return (train.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(buffer).enumerate().flat_map(permute).batch(batch_size))
    augmenter = augment_lib.build_augmenter(augment, image_shape=image_shape,
                                            seed=seed, **(augment_knobs or {}))
    train_ds, counter = _training_stream(one_pass, n_train, batch_size=batch_size,
                                         seed=seed, augmenter=augmenter, mode=mode)
    common = dict(prepare=prepare, batch_size=batch_size, mode=mode, cache=False)
    val = _pipeline(split(f"train[:{n_val}]"), **common) if n_val else None
    test = _pipeline(split("test"), **common)
    info = DatasetInfo(
        name=source, class_names=list(builder.info.features["label"].names),
        image_shape=image_shape, source_shape=stored, num_train=n_train,
        num_val=n_val, num_test=builder.info.splits["test"].num_examples,
        preprocessing=mode)
    sample = next(iter(train.take(32).map(prepare).batch(32)))
    return Data(train_ds, val, test, info, augmenter,
                (np.asarray(sample[0]), np.asarray(sample[1])), counter)


def _list_folder(root: Path, class_names=None):
    """(paths, labels, class names) of a folder with one sub-folder of images
    per class (sorted by name, as Keras' image_dataset_from_directory).

    With `class_names` (the training split's), labels are matched by name:
    a sub-folder that is not among them is refused (its images cannot be
    labelled), never relabelled by position."""
    classes = _class_dirs(root)
    names = [c.name for c in classes] if class_names is None else list(class_names)
    unknown = sorted(c.name for c in classes if c.name not in names)
    if unknown:
        raise DataError(f"{root} has class folder(s) {', '.join(unknown)} that the "
                        f"training split lacks (it has {', '.join(names)}); a model "
                        "trained there cannot predict them. Add them to train/ or "
                        "remove them from this split.")
    paths, labels = [], []
    for folder in classes:
        files = sorted(f for f in folder.rglob("*")
                       if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        check_image_files(files)
        paths += [str(f) for f in files]
        labels += [names.index(folder.name)] * len(files)
    return np.array(paths), np.array(labels, np.int32), names


def _test_folder(root: Path, class_names):
    """The test split of a folder with train/ and test/, labelled by the
    training split's class names; training classes without test images are
    reported (their accuracy is not measured), not refused."""
    paths, labels, _ = _list_folder(root / "test", class_names)
    missing = [name for k, name in enumerate(class_names) if k not in set(labels)]
    if missing:
        warnings.warn(f"{root / 'test'} has no images of class(es) "
                      f"{', '.join(missing)}: test accuracy covers the other "
                      f"{len(class_names) - len(missing)} classes only.", stacklevel=3)
    return paths, labels


def _image_reader(image_shape):
    """Reads, decodes and resizes one image file to float32 (h, w, c)."""
    import tensorflow as tf
    h, w, c = image_shape

    def read(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=c,
                                   expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (h, w))
        image.set_shape((h, w, c))
        return image, label
    return read


def _read_all(paths, labels, read, image_shape):
    """Every image of a folder decoded into one uint8 tf.Variable (the
    in-memory cache of a folder that fits FOLDER_CACHE_BYTES), filled batch
    by batch so that the images exist once in memory."""
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((paths, labels)).map(
        read, num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    with tf.device("CPU"):
        images = tf.Variable(tf.zeros((len(paths), *image_shape), tf.uint8),
                             trainable=False, name="train_images")
    start = 0
    try:
        for x, _ in ds:
            images[start:start + len(x)].assign(
                tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8))
            start += len(x)
    except tf.errors.InvalidArgumentError:
        raise DataError(f"{undecodable(paths[start:start + 256])} cannot be decoded "
                        "as an image; remove or replace it.") from None
    return images


def _load_folder(source, *, image_size, channels, batch_size, validation_split,
                 augment, augment_knobs, seed, mode, cache, fold=None, shard=None,
                 limit=None):
    """An image folder, streamed from disk: file names and labels are held in
    memory, images are decoded batch by batch (no shuffle buffer: each pass
    reads the files in a seeded random order). With `cache`, the decoded
    images are kept in memory when they fit FOLDER_CACHE_BYTES."""
    import tensorflow as tf
    root = Path(source[len("folder:"):])
    has_test = (root / "train").is_dir() and (root / "test").is_dir()
    paths, labels, class_names = _list_folder(root / "train" if has_test else root)
    size = tuple(image_size or (256, 256))
    image_shape = (*size, 1 if channels == 1 else 3)
    split = validation_split or (0.0 if has_test else 0.2)
    ptr, ltr, pva, lva = _split(paths, labels, split, seed, fold)
    if limit and limit < len(ptr):
        # The files are listed class by class: a seeded random subset.
        keep = np.sort(np.random.default_rng(seed).permutation(len(ptr))[:limit])
        ptr, ltr = ptr[keep], ltr[keep]
    if has_test:
        pte, lte = _test_folder(root, class_names)
    else:
        pte, lte = pva, lva
    read = _image_reader(image_shape)
    identity = _prepare_fn(image_shape, image_shape)
    fits = cache and len(ptr) * int(np.prod(image_shape)) <= FOLDER_CACHE_BYTES
    if fits:
        fetch = _array_fetch(_read_all(ptr, ltr, read, image_shape), ltr, identity,
                             batch_size, shard)
    else:
        tr_paths, tr_labels = tf.constant(ptr), tf.constant(ltr)
        local = batch_size // (shard[1] if shard else 1)
        fetch = (lambda order: _batched_indices(order, batch_size, shard).unbatch().map(
            lambda i: read(tf.gather(tr_paths, i), tf.gather(tr_labels, i)),
            num_parallel_calls=tf.data.AUTOTUNE).batch(local))
    augmenter = augment_lib.build_augmenter(augment, image_shape=image_shape,
                                            seed=seed, **(augment_knobs or {}))
    train, counter = _training_stream(_permuted(fetch, len(ptr), seed), len(ptr),
                                      batch_size=batch_size, seed=seed,
                                      augmenter=augmenter, mode=mode, shard=shard)
    # Validation and test images are read from disk each time (not cached).
    common = dict(prepare=read, batch_size=batch_size, mode=mode, cache=False,
                  shard=shard)
    val = _pipeline(tf.data.Dataset.from_tensor_slices((pva, lva)), **common) \
        if len(pva) else None
    test = _pipeline(tf.data.Dataset.from_tensor_slices((pte, lte)), **common)
    info = DatasetInfo(name=source, class_names=class_names, image_shape=image_shape,
                       source_shape=image_shape, num_train=len(ptr),
                       num_val=len(pva), num_test=len(pte), preprocessing=mode,
                       test_is_validation=not has_test)
    sample = next(iter(tf.data.Dataset.from_tensor_slices(
        (ptr[:32], ltr[:32])).map(read).batch(32)))
    return Data(train, val, test, info, augmenter,
                (np.asarray(sample[0], "float32"), np.asarray(sample[1])), counter)


def one_hot(ds, num_classes):
    """(images, labels[, weights]) batches with one-hot labels, for losses
    that need them (label smoothing). tf.data runs TensorFlow under every
    Keras backend, so this is TensorFlow's one_hot, not keras.ops'."""
    import tensorflow as tf
    if ds is None:
        return None
    return ds.map(lambda x, y, *rest: (x, tf.one_hot(y, num_classes), *rest))


def sample_images(data: Data, n=16):
    """`n` training images as the model sees them before augmentation and
    scaling: float arrays in [0, 255] of the pipeline's image shape."""
    x, y = data.raw_sample
    return x[:n], y[:n]


def save_augmentation_grid(data: Data, path, n=32):
    """PNG grid of `n` training images after the pipeline's augmentation."""
    x, _ = sample_images(data, n)
    return augment_lib.save_grid(x, path, augmenter=data.augmenter)
