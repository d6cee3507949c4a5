"""zoo.data.load: the default pipelines, conversions and bad sources (issue #4)."""


import numpy as np
import pytest

from zoo import data as data_lib


def test_digits_default_pipeline():
    data = data_lib.load("digits", batch_size=50)
    info = data.info
    assert (info.num_train, info.num_val, info.num_test) == (1293, 144, 360)
    assert info.image_shape == (8, 8, 1) and info.num_classes == 10
    assert not info.allow_flip
    x, y = next(iter(data.train))
    assert x.shape == (50, 8, 8, 1) and y.dtype.name == "int32"
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0


def test_resize_channels_and_preprocessing_modes():
    data = data_lib.load("digits", image_size=16, channels=3, batch_size=8,
                         preprocessing_mode="tf")
    x, _ = next(iter(data.test))
    assert x.shape == (8, 16, 16, 3)
    assert float(np.min(x)) >= -1.0 and float(np.max(x)) <= 1.0
    assert float(np.min(x)) < -0.5


def _truncated_idx(folder):
    """Fashion-MNIST IDX files whose training images stop short."""
    for stem, dims, body in (("train-images-idx3-ubyte", (4, 28, 28), 4 * 28 * 28 - 5),
                             ("train-labels-idx1-ubyte", (4,), 4),
                             ("t10k-images-idx3-ubyte", (2, 28, 28), 2 * 28 * 28),
                             ("t10k-labels-idx1-ubyte", (2,), 2)):
        magic = (0x0800 + len(dims)).to_bytes(4, "big")
        shape = b"".join(d.to_bytes(4, "big") for d in dims)
        (folder / stem).write_bytes(magic + shape + bytes(body))
    return folder


BAD = [
    (lambda tmp: data_lib.load("imagenet21k"), "Unknown dataset 'imagenet21k'"),
    (lambda tmp: data_lib.load("fashion_mnst"), "Did you mean: fashion_mnist"),
    (lambda tmp: data_lib.load("fashion_mnist", data_dir=tmp / "missing"),
     "does not exist"),
    (lambda tmp: data_lib.load("fashion_mnist", data_dir=tmp), "No fashion_mnist IDX"),
    (lambda tmp: data_lib.load("folder:" + str(tmp / "nope")), "does not exist"),
    (lambda tmp: data_lib.load("npz:" + str(tmp / "nope.npz")), "No such .npz"),
    (lambda tmp: data_lib.load("digits", batch_size=0), "batch_size"),
    (lambda tmp: data_lib.load("digits", validation_split=1.0), "validation_split"),
    (lambda tmp: data_lib.load("digits", augment="wild"), "Unknown augmentation preset"),
    (lambda tmp: data_lib.load("digits", preprocessing_mode="zscore"),
     "Unknown preprocessing"),
    (lambda tmp: data_lib.load("digits", image_size=0), r"image_size .* got \(0, 0\)"),
    (lambda tmp: data_lib.load("digits", image_size=(8,)), r"image_size .* got \(8,\)"),
    (lambda tmp: data_lib.load("digits", image_size="big"), "image_size .* got 'big'"),
    (lambda tmp: data_lib.load("digits", channels=2), "channels must be 1 or 3; got 2"),
    (lambda tmp: data_lib.load("fashion_mnist", data_dir=_truncated_idx(tmp)),
     "truncated|corrupt|damaged"),
]


@pytest.mark.parametrize("call,message", BAD, ids=[m for _, m in BAD])
def test_bad_sources(call, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        call(tmp_path)


def test_a_seed_outside_numpys_range_is_refused_before_loading():
    # It reached the user as scikit-learn's InvalidParameterError.
    from zoo.errors import InputError
    for seed in (-1, 2 ** 32, 1.5):
        with pytest.raises(InputError, match=r"seed must be a whole number in \[0, "
                                             r"2\*\*32 - 1\]"):
            data_lib.load("digits", seed=seed)
