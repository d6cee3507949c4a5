"""TensorFlow Datasets sources (`tfds:NAME`, the `tfds` extra): loaded into
memory like any array source when the decoded training split fits
FOLDER_CACHE_BYTES, otherwise streamed from the TFDS files."""

from __future__ import annotations

import numpy as np

from zoo import augment as augment_lib
from zoo.data_checks import DataError
from zoo.data_types import Data, DatasetInfo
from zoo import folders
from zoo.input_pipeline import batched_pipeline, image_hw, prepare_fn, training_stream
from zoo.recipe import RECIPE
from zoo.sources import Arrays


# The shuffle buffer of a streamed (too large for memory) TFDS dataset.
TFDS_SHUFFLE_BYTES = 256 << 20


def prepared_builder(name, data_dir):
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


def fits_memory(builder) -> bool:
    """Whether the training split, decoded, fits FOLDER_CACHE_BYTES (so it
    is loaded into memory like any array source); otherwise it is streamed."""
    shape = builder.info.features["image"].shape
    if None in shape:
        return False
    return builder.info.splits["train"].num_examples * int(np.prod(shape)) \
        <= folders.FOLDER_CACHE_BYTES


def tfds_arrays(builder):
    import tensorflow_datasets as tfds
    train, test = (tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True,
                                                    batch_size=-1))
                   for split in ("train", "test"))
    names = builder.info.features["label"].names
    return Arrays(np.asarray(train[0]), np.asarray(train[1]),
                   np.asarray(test[0]), np.asarray(test[1]), list(names))


def load_stream(source, builder, *, image_size, channels, batch_size,
                      validation_split, augment, augment_knobs, seed, mode, limit=None,
                      min_image_size=None):
    """A TFDS dataset too large for memory, streamed from its files: the
    validation part is the first `validation_split` of the training split
    (file order, not stratified), and each pass is shuffled in windows of
    TFDS_SHUFFLE_BYTES, seeded with (seed, pass)."""
    import tensorflow as tf
    stored = tuple(builder.info.features["image"].shape)
    if image_size is None and None in stored[:2]:
        raise DataError(f"{source} has images of varying size {stored}; pass "
                        "image_size (--image-size).")
    image_shape = (*image_hw(image_size, stored[:2], min_image_size), channels or stored[2])
    prepare = prepare_fn(image_shape, stored)
    n = builder.info.splits["train"].num_examples
    if validation_split is None:
        validation_split = RECIPE.holdout(n)
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
    train_ds, counter = training_stream(one_pass, n_train, batch_size=batch_size,
                                         seed=seed, augmenter=augmenter, mode=mode)
    common = dict(prepare=prepare, batch_size=batch_size, mode=mode, cache=False)
    val = batched_pipeline(split(f"train[:{n_val}]"), **common) if n_val else None
    test = batched_pipeline(split("test"), **common)
    info = DatasetInfo(
        name=source, class_names=list(builder.info.features["label"].names),
        image_shape=image_shape, source_shape=stored, num_train=n_train,
        num_val=n_val, num_test=builder.info.splits["test"].num_examples,
        preprocessing=mode)
    sample = next(iter(train.take(32).map(prepare).batch(32)))
    return Data(train_ds, val, test, info, augmenter,
                (np.asarray(sample[0]), np.asarray(sample[1])), counter)


def check_streamable(source, fold, shard):
    if fold is not None or shard is not None:
        raise DataError(f"{source} is too large to hold in memory and is "
                        "streamed; k-fold cross-validation and multi-process "
                        "training need an in-memory or folder dataset.")
