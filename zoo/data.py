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

The readers live in modules of their own: `zoo.sources` (named datasets
and npz), `zoo.folders`, `zoo.tfds_source`; `zoo.splits` draws the
validation split and folds, `zoo.input_pipeline` builds the pipelines.
"""

from __future__ import annotations

import numpy as np

from zoo import augment as augment_lib
from zoo import preprocessing
from zoo.data_checks import DataError, check_array_data, check_labels
from zoo.data_types import Data, DatasetInfo
from zoo.errors import check_positive_int, check_seed
from zoo.folders import FOLDER_CACHE_BYTES, IMAGE_SUFFIXES, load_folder
from zoo.input_pipeline import array_fetch, batched_pipeline, image_hw, permuted, \
    prepare_fn, training_stream
from zoo.sources import (CIFAR10_CLASSES, FASHION_CLASSES, PREFIXES, SOURCES,
                         check_source, read_arrays)
from zoo.splits import check_fold, check_shard, limit_subset, train_val_split
from zoo.tfds_source import (TFDS_SHUFFLE_BYTES, prepared_builder,
                             check_streamable, fits_memory, load_stream, tfds_arrays)

# The names earlier versions had here (benchmarks and users import them).
_arrays, _pipeline, _training_stream = read_arrays, batched_pipeline, training_stream
__all__ = ["CIFAR10_CLASSES", "DataError", "Data", "DatasetInfo", "FASHION_CLASSES",
           "FOLDER_CACHE_BYTES", "IMAGE_SUFFIXES", "PREFIXES", "SOURCES",
           "TFDS_SHUFFLE_BYTES", "check_shard", "check_source", "load", "one_hot",
           "sample_images", "save_augmentation_grid"]


def _check_arguments(source, data_dir, mode, batch_size, validation_split, channels,
                     image_size, augment, augment_knobs, fold=None, shard=None,
                     limit=None, seed=0, min_image_size=None):
    """`load`'s checks, before anything is read; returns the checked source
    and image_size as (h, w) or None."""
    source = check_source(source, data_dir)
    preprocessing.check_mode(mode)
    check_positive_int(batch_size, "batch_size", DataError)
    if validation_split is not None and (isinstance(validation_split, bool) or not
                                         isinstance(validation_split, (int, float))
                                         or not 0 <= validation_split < 1):
        raise DataError("validation_split must be in [0, 1); got "
                        f"{validation_split!r}.")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3; got {channels!r}.")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise DataError(f"image_size must be a positive int or (h, w); got {image_size!r}.")
    if min_image_size is not None:
        check_positive_int(min_image_size, "min_image_size", DataError)
    augment_lib.resolve(augment, **(augment_knobs or {}))
    check_fold(fold)
    check_shard(shard, batch_size)
    if limit is not None:
        check_positive_int(limit, "limit", DataError)
    check_seed(seed)
    return source, image_size


def load(source="digits", *, data_dir=None, image_size=None, channels=None,
         batch_size=64, validation_split=0.1, augment="none", seed=0,
         preprocessing_mode="unit", cache=True, limit=None,
         augment_knobs=None, fold=None, shard=None, min_image_size=None) -> Data:
    """Loads a dataset as train/validation/test `tf.data` pipelines.

    Args:
        source: "digits", "mnist", "fashion_mnist", "cifar10", "cifar100",
            "folder:PATH", "npz:PATH" or "tfds:NAME".
        data_dir: folder holding the files of a named dataset.
        image_size, channels: int or (h, w), and 1 or 3, to convert to
            (default: as stored; with `min_image_size`, a shorter side below
            it resized up to it: the recipe's floor).
        batch_size, validation_split: of all three pipelines; the fraction
            of the training data held out (None: the recipe's rule,
            zoo.recipe.Recipe.holdout: 0.1 when that is at least 1,000
            images, else 0).
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
            `batch_size` (see `batched_pipeline`). In-memory and folder sources.

    Returns:
        Data with `.train`, `.val`, `.test` and `.info`.

    Example:
        >>> data = zoo.data.load("digits", image_size=16, batch_size=32)
        >>> data.info.num_classes
        10
    """
    source, image_size = _check_arguments(
        source, data_dir, preprocessing_mode, batch_size, validation_split, channels,
        image_size, augment, augment_knobs, fold, shard, limit, seed, min_image_size)
    common = dict(image_size=image_size, channels=channels, batch_size=batch_size,
                  validation_split=validation_split, augment=augment,
                  augment_knobs=augment_knobs, seed=seed)
    if source.startswith("folder:"):
        return load_folder(source, mode=preprocessing_mode, cache=cache, fold=fold,
                            shard=shard, limit=limit, **common)
    if source.startswith("tfds:"):
        builder = prepared_builder(source[len("tfds:"):], data_dir)
        if not fits_memory(builder):
            check_streamable(source, fold, shard)
            return load_stream(source, builder, mode=preprocessing_mode, limit=limit,
                               min_image_size=min_image_size, **common)
        arrays = tfds_arrays(builder)
    else:
        arrays = read_arrays(source, data_dir)
    return _load_arrays(arrays, source, preprocessing_mode=preprocessing_mode,
                        cache=cache, limit=limit, fold=fold, shard=shard,
                        min_image_size=min_image_size, **common)


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
                 cache, limit, fold, shard, min_image_size=None) -> Data:
    """`load` for in-memory sources (named datasets, npz, small TFDS sets)."""
    _check_arrays(arrays, source)
    xtr, ytr, xva, yva = train_val_split(arrays.x_train, arrays.y_train,
                                validation_split, seed, fold)
    xtr, ytr = limit_subset(xtr, ytr, limit, seed)
    source_shape = tuple(int(d) for d in arrays.x_train.shape[1:])
    image_shape = (*image_hw(image_size, source_shape[:2], min_image_size),
                   channels or source_shape[2])
    import tensorflow as tf
    augmenter = augment_lib.build_augmenter(
        augment, image_shape=image_shape, seed=seed,
        allow_flip=arrays.allow_flip, **(augment_knobs or {}))
    prepare = prepare_fn(image_shape, source_shape)
    common = dict(prepare=prepare, batch_size=batch_size, mode=preprocessing_mode,
                  cache=cache, shard=shard)
    train, counter = training_stream(
        permuted(array_fetch(xtr, ytr, prepare, batch_size, shard), len(xtr), seed),
        len(xtr), batch_size=batch_size, seed=seed, augmenter=augmenter,
        mode=preprocessing_mode, shard=shard)
    val = batched_pipeline(tf.data.Dataset.from_tensor_slices((xva, yva)), **common)
    test = batched_pipeline(tf.data.Dataset.from_tensor_slices((arrays.x_test, arrays.y_test)),
                     **common)
    info = DatasetInfo(
        name=source, class_names=list(arrays.class_names), image_shape=image_shape,
        source_shape=source_shape, num_train=len(xtr), num_val=len(xva),
        num_test=len(arrays.x_test), preprocessing=preprocessing_mode,
        allow_flip=arrays.allow_flip)
    sample = prepare(xtr[:32], ytr[:32])
    return Data(train, val if len(xva) else None, test, info, augmenter,
                (np.asarray(sample[0]), np.asarray(sample[1])), counter)


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
