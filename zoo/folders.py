"""Image folders (`folder:PATH`): one sub-folder per class, classes matched
by name across train/ and test/, images streamed from disk or decoded once
into memory when they fit FOLDER_CACHE_BYTES."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from zoo import augment as augment_lib
from zoo.data_checks import DataError, check_image_files, undecodable
from zoo.data_types import Data, DatasetInfo
from zoo.input_pipeline import (array_fetch, batched_indices, batched_pipeline,
                                permuted, prepare_fn, training_stream)
from zoo.splits import limit_subset, train_val_split


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


# A folder's decoded training images are kept in memory up to this size;
# larger folders are read from disk on every pass (docs/training.md).
FOLDER_CACHE_BYTES = 512 << 20


def _class_dirs(path: Path):
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_folder(path: Path):
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


def load_folder(source, *, image_size, channels, batch_size, validation_split,
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
    # Without a test/ folder the validation part is the test split.
    split = validation_split if has_test else (validation_split or 0.2)
    ptr, ltr, pva, lva = train_val_split(paths, labels, split, seed, fold)
    ptr, ltr = limit_subset(ptr, ltr, limit, seed)
    if has_test:
        pte, lte = _test_folder(root, class_names)
    else:
        pte, lte = pva, lva
    read = _image_reader(image_shape)
    identity = prepare_fn(image_shape, image_shape)
    fits = cache and len(ptr) * int(np.prod(image_shape)) <= FOLDER_CACHE_BYTES
    if fits:
        fetch = array_fetch(_read_all(ptr, ltr, read, image_shape), ltr, identity,
                             batch_size, shard)
    else:
        tr_paths, tr_labels = tf.constant(ptr), tf.constant(ltr)
        local = batch_size // (shard[1] if shard else 1)
        fetch = (lambda order: batched_indices(order, batch_size, shard).unbatch().map(
            lambda i: read(tf.gather(tr_paths, i), tf.gather(tr_labels, i)),
            num_parallel_calls=tf.data.AUTOTUNE).batch(local))
    augmenter = augment_lib.build_augmenter(augment, image_shape=image_shape,
                                            seed=seed, **(augment_knobs or {}))
    train, counter = training_stream(permuted(fetch, len(ptr), seed), len(ptr),
                                      batch_size=batch_size, seed=seed,
                                      augmenter=augmenter, mode=mode, shard=shard)
    # Validation and test images are read from disk each time (not cached).
    common = dict(prepare=read, batch_size=batch_size, mode=mode, cache=False,
                  shard=shard)
    val = batched_pipeline(tf.data.Dataset.from_tensor_slices((pva, lva)), **common) \
        if len(pva) else None
    test = batched_pipeline(tf.data.Dataset.from_tensor_slices((pte, lte)), **common)
    info = DatasetInfo(name=source, class_names=class_names, image_shape=image_shape,
                       source_shape=image_shape, num_train=len(ptr),
                       num_val=len(pva), num_test=len(pte), preprocessing=mode,
                       test_is_validation=not has_test)
    sample = next(iter(tf.data.Dataset.from_tensor_slices(
        (ptr[:32], ltr[:32])).map(read).batch(32)))
    return Data(train, val, test, info, augmenter,
                (np.asarray(sample[0], "float32"), np.asarray(sample[1])), counter)
