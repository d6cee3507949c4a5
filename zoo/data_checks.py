"""What is wrong with a dataset, named before any model work: the checks
`zoo.data.load` runs on arrays (counts, label types and range, NaN and
infinite pixels, image sizes across splits) and on image files (formats,
undecodable files). Each failure is a DataError naming the split, the index
or the file, and what to do."""

from __future__ import annotations

import numpy as np

from zoo.errors import InputError


class DataError(InputError):
    """The data asked for cannot be found or does not make sense."""


def _integer_labels(y, where):
    """`y` as int64, or a DataError naming the first label that is not a
    whole number (0.5, NaN)."""
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind not in "fb":
        raise DataError(f"Labels in {where} must be integers 0..k-1; got dtype {y.dtype}.")
    bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y))) if y.dtype.kind == "f" \
        else np.array([], int)
    if len(bad):
        raise DataError(f"Labels in {where} must be whole numbers 0..k-1; label "
                        f"{int(bad[0])} is {float(y[bad[0]]):g} ({len(bad)} such).")
    return y.astype(np.int64)


def _finite_images(x, where):
    """A DataError naming the first image with a NaN or infinite pixel."""
    if x.dtype.kind != "f":
        return
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(bad):
        raise DataError(f"Image {int(bad[0])} of {where} has NaN or infinite pixels "
                        f"({len(bad)} such images); fix or drop them.")


def check_array_data(x_train, y_train, x_test, y_test, where):
    """Images and labels that fit each other, checked before any training:
    as many labels as images, whole-number labels, finite pixels and one
    image shape in both splits. Returns them with int64 labels."""
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[0] == len(x) and y.shape[1] > 1:
            raise DataError(f"{where} ({split}) labels have shape {y.shape}: one-hot "
                            "or scores, where class indices are needed; pass "
                            "np.argmax(labels, axis=1).")
    y_train, y_test = np.asarray(y_train).reshape(-1), np.asarray(y_test).reshape(-1)
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DataError(f"{where} ({split}) has {len(x)} images but {len(y)} "
                            "labels; they must be as many.")
    y_train = _integer_labels(y_train, f"{where} (train)")
    y_test = _integer_labels(y_test, f"{where} (test)")
    if tuple(x_train.shape[1:]) != tuple(x_test.shape[1:]):
        raise DataError(f"{where}: the test images are {tuple(x_test.shape[1:])} but "
                        f"the training images {tuple(x_train.shape[1:])}; give both "
                        "splits one image size (image_size resizes both together).")
    _finite_images(x_train, f"{where} (train)")
    _finite_images(x_test, f"{where} (test)")
    return x_train, y_train, x_test, y_test


def check_labels(y, num_classes, where):
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"Labels in {where} range from {int(y.min())} to "
                        f"{int(y.max())}, outside 0..{num_classes - 1} for "
                        f"{num_classes} classes.")


# The first bytes of the formats TensorFlow's decode_image reads.
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a")


def check_image_files(files):
    """A DataError naming the first file that is no PNG, JPEG, BMP or GIF
    (by its first bytes: cheap enough for every file before training; a
    file damaged further in is named when it is decoded, `_read_all`)."""
    for f in files:
        with open(f, "rb") as handle:
            head = handle.read(8)
        if not head.startswith(IMAGE_SIGNATURES):
            raise DataError(f"{f} is not a PNG, JPEG, BMP or GIF image (its first "
                            f"bytes are {head!r}); remove or replace it.")


def undecodable(paths):
    """The first of `paths` that TensorFlow cannot decode."""
    import tensorflow as tf
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        except tf.errors.InvalidArgumentError:
            return path
    return "An image among " + ", ".join(map(str, paths[:3]))
