"""The in-memory sources: IDX, CIFAR binary archives and npz (zoo.sources)."""

import gzip
import struct

import numpy as np
import pytest

from zoo import data as data_lib
from zoo.data import DataError


def write_idx(path, array):
    array = np.asarray(array, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture
def idx_dir(tmp_path, rng):
    x_train = rng.integers(0, 255, (60, 28, 28))
    y_train = np.arange(60) % 10
    x_test = rng.integers(0, 255, (20, 28, 28))
    y_test = np.arange(20) % 10
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x_train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x_test)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y_test)
    return tmp_path, x_test


def test_fashion_mnist_from_staged_idx_files(idx_dir):
    folder, x_test = idx_dir
    data = data_lib.load("fashion_mnist", data_dir=folder, batch_size=20,
                         validation_split=0.0, preprocessing_mode="raw")
    assert data.info.class_names[9] == "Ankle boot"
    assert (data.info.num_train, data.info.num_test) == (60, 20)
    x, y = next(iter(data.test))
    np.testing.assert_array_equal(x.numpy()[..., 0], x_test)
    np.testing.assert_array_equal(y.numpy(), np.arange(20) % 10)


def test_truncated_idx_file_is_reported(idx_dir):
    folder, _ = idx_dir
    path = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    with gzip.open(path, "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data_lib.load("fashion_mnist", data_dir=folder)


def test_npz_source(tmp_path, rng):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 255, (30, 10, 10)).astype(np.uint8),
             y_train=np.arange(30) % 3,
             x_test=rng.integers(0, 255, (9, 10, 10)).astype(np.uint8),
             y_test=np.arange(9) % 3)
    data = data_lib.load(f"npz:{path}", batch_size=5)
    assert data.info.image_shape == (10, 10, 1)
    assert data.info.num_classes == 3 and data.info.num_test == 9


def test_cifar_archive_with_the_wrong_checksum_is_not_used(tmp_path):
    # A valid-looking cifar-10-binary.tar.gz in the Keras cache that is not
    # the published file (another MD5) is refused, not extracted and read.
    import io
    import subprocess
    import sys
    import tarfile
    from helpers import subprocess_env
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    with tarfile.open(home / "datasets" / "cifar-10-binary.tar.gz", "w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for i, name in enumerate(names):
            records = np.zeros((4, 3073), np.uint8)
            records[:, 0] = (4 * i + np.arange(4)) % 10          # labels: 2 per class
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = records.size
            tar.addfile(info, io.BytesIO(records.tobytes()))
    code = "from zoo import data\nprint(data.load('cifar10').info.num_train)\n"
    env = subprocess_env(KERAS_HOME=str(home), HTTPS_PROXY="http://127.0.0.1:9",
                         HTTP_PROXY="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0, result.stdout
    assert "DataError" in result.stderr and "cifar10" in result.stderr


def _npz_with(tmp_path, **changes):
    arrays = dict(x_train=np.zeros((6, 8, 8), np.uint8), y_train=np.arange(6) % 2,
                  x_test=np.zeros((4, 8, 8), np.uint8), y_test=np.arange(4) % 2)
    arrays.update(changes)
    np.savez(tmp_path / "d.npz", **arrays)
    return f"npz:{tmp_path / 'd.npz'}"


@pytest.mark.parametrize("changes,message", [
    (dict(y_train=np.array([0, 0.5, 1, 0, 1, 0])), r"whole numbers.*label 1 is 0\.5"),
    (dict(y_train=np.array([0, np.nan, 1, 0, 1, 0])), "whole numbers.*label 1 is nan"),
    (dict(y_train=np.arange(5) % 2), "6 images but 5 labels"),
    (dict(x_test=np.zeros((4, 10, 10), np.uint8)), r"test images are \(10, 10, 1\)"),
    (dict(x_train=np.where(np.arange(6)[:, None, None] == 3, np.nan,
                           np.zeros((6, 8, 8), np.float32))),
     "Image 3 of .*train.* NaN or infinite"),
    (dict(y_train=np.eye(2)[np.arange(6) % 2]), r"shape \(6, 2\): one-hot"),
], ids=["fractional", "nan-label", "counts", "sizes", "nan-pixels", "one-hot"])
def test_npz_data_problems_are_named(tmp_path, changes, message):
    with pytest.raises(DataError, match=message):
        data_lib.load(_npz_with(tmp_path, **changes), batch_size=2)


def test_whole_float_labels_are_accepted(tmp_path):
    data = data_lib.load(_npz_with(tmp_path, y_train=(np.arange(6) % 2).astype(float)),
                         batch_size=2, validation_split=0)
    assert data.info.num_classes == 2


def test_labels_outside_class_range(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 1, 2, -1]),
             x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.array([0, 1]))
    with pytest.raises(DataError, match="Labels in .* range from -1"):
        data_lib.load(f"npz:{path}")
