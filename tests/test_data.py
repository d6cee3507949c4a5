"""Datasets: loaders, splits, preprocessing and bad input (issue #4)."""

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import subprocess_env
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


def test_digits_default_pipeline():
    data = data_lib.load("digits", batch_size=50)
    info = data.info
    assert (info.num_train, info.num_val, info.num_test) == (1293, 144, 360)
    assert info.image_shape == (8, 8, 1) and info.num_classes == 10
    assert not info.allow_flip
    x, y = next(iter(data.train))
    assert x.shape == (50, 8, 8, 1) and y.dtype.name == "int32"
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0


def test_splits_are_deterministic_and_disjoint():
    a = data_lib.load("digits", batch_size=2000, seed=3)
    b = data_lib.load("digits", batch_size=2000, seed=3)
    va, vb = next(iter(a.val))[0].numpy(), next(iter(b.val))[0].numpy()
    np.testing.assert_array_equal(va, vb)
    test = next(iter(a.test))[0].numpy()
    c = data_lib.load("digits", batch_size=2000, seed=4)
    np.testing.assert_array_equal(test, next(iter(c.test))[0].numpy())
    assert not np.array_equal(va, next(iter(c.val))[0].numpy())


def test_resize_channels_and_preprocessing_modes():
    data = data_lib.load("digits", image_size=16, channels=3, batch_size=8,
                         preprocessing_mode="tf")
    x, _ = next(iter(data.test))
    assert x.shape == (8, 16, 16, 3)
    assert float(np.min(x)) >= -1.0 and float(np.max(x)) <= 1.0
    assert float(np.min(x)) < -0.5


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


def test_folder_of_pngs(tmp_path, rng):
    for label in ("cat", "dog", "eel"):
        (tmp_path / label).mkdir()
        for i in range(6):
            img = rng.integers(0, 255, (12, 10, 3)).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / label / f"{i}.png")
    data = data_lib.load(f"folder:{tmp_path}", image_size=16, batch_size=4,
                         validation_split=0.25)
    assert data.info.class_names == ["cat", "dog", "eel"]
    assert data.info.num_train + data.info.num_val == 18
    assert data.info.test_is_validation
    x, y = next(iter(data.train))
    assert x.shape[1:] == (16, 16, 3) and int(np.max(y)) <= 2


def test_npz_source(tmp_path, rng):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 255, (30, 10, 10)).astype(np.uint8),
             y_train=np.arange(30) % 3,
             x_test=rng.integers(0, 255, (9, 10, 10)).astype(np.uint8),
             y_test=np.arange(9) % 3)
    data = data_lib.load(f"npz:{path}", batch_size=5)
    assert data.info.image_shape == (10, 10, 1)
    assert data.info.num_classes == 3 and data.info.num_test == 9


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


def test_single_class_and_empty_folders(tmp_path):
    (tmp_path / "only").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError, match="at least two classes; found 1"):
        data_lib.load(f"folder:{tmp_path}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="without images.*empty"):
        data_lib.load(f"folder:{tmp_path}")


def test_labels_outside_class_range(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 1, 2, -1]),
             x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.array([0, 1]))
    with pytest.raises(DataError, match="Labels in .* range from -1"):
        data_lib.load(f"npz:{path}")


def test_tfds_missing_dependency(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_tfds(name, *args, **kwargs):
        if name.split(".")[0] == "tensorflow_datasets":
            raise ImportError("No module named 'tensorflow_datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tfds)
    with pytest.raises(data_lib.DataError, match=r"tfds: sources need TensorFlow "
                                                 r"Datasets: pip install 'cnn-zoo\[tfds\]'"):
        data_lib.load("tfds:mnist")


def _npz(tmp_path, y_train, name="d.npz"):
    rng = np.random.default_rng(0)
    path = tmp_path / name
    np.savez(path, x_train=rng.integers(0, 255, (len(y_train), 8, 8, 1), dtype=np.uint8),
             y_train=np.asarray(y_train), x_test=np.zeros((4, 8, 8, 1), np.uint8),
             y_test=np.arange(4) % 2)
    return path


def test_classes_with_one_image_are_refused(tmp_path):
    # 20 images, labels 0-19: the random split used to put classes into
    # validation that training never saw, without a word.
    path = _npz(tmp_path, np.arange(20))
    with pytest.raises(DataError, match=r"Class\(es\) 0, 1, 2.* have a single training "
                                         r"image.*--validation-split 0"):
        data_lib.load(f"npz:{path}")
    data = data_lib.load(f"npz:{path}", validation_split=0)
    assert data.info.num_train == 20


def test_k_fold_validation_parts_partition_the_training_data():
    parts = []
    for i in range(3):
        data = data_lib.load("digits", fold=(i, 3), preprocessing_mode="raw",
                             batch_size=512)
        val = np.concatenate([np.asarray(x) for x, _ in data.val])
        labels = np.concatenate([np.asarray(y) for _, y in data.val])
        assert data.info.num_train + data.info.num_val == 1437
        # Stratified: each class in about the same share as in the data.
        assert np.bincount(labels, minlength=10).min() >= 45
        parts.append(val.reshape(len(val), -1))
    every = np.concatenate(parts)
    assert len(every) == 1437
    # The three validation parts are disjoint: no image is in two of them
    # (digits holds a few duplicate images, so compare counts, not sets).
    full = data_lib.load("digits", validation_split=0.0, preprocessing_mode="raw",
                         batch_size=2048)
    train = np.concatenate([np.asarray(x) for x, _ in full.train])
    assert sorted(map(bytes, every)) == sorted(map(bytes, train.reshape(len(train), -1)))


def test_bad_fold_is_refused(tmp_path):
    for fold in ((3, 3), (0, 1), "0/3", (0.5, 3)):
        with pytest.raises(DataError, match="fold must be \\(i, k\\)"):
            data_lib.load("digits", fold=fold)
    path = _npz(tmp_path, np.repeat(np.arange(10), 2))
    with pytest.raises(DataError, match="3-fold cross-validation needs at least 3 "
                                        "training images of every class; class 0 has 2"):
        data_lib.load(f"npz:{path}", fold=(0, 3))


def test_validation_split_holds_every_class(tmp_path):
    # 10 classes with 2 images each: 10 % of 20 would be 2 validation images;
    # the split takes one per class so both parts hold every class.
    path = _npz(tmp_path, np.repeat(np.arange(10), 2))
    data = data_lib.load(f"npz:{path}", batch_size=32)
    val = np.concatenate([np.asarray(y) for _, y in data.val])
    train = np.concatenate([np.asarray(y) for _, y in data.train])
    assert sorted(val) == list(range(10)) and sorted(train) == list(range(10))


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


_TINY_TFDS = {}


def _tiny_tfds_builder():
    """A three-class TFDS dataset of 8×8 images, defined here (TFDS
    registers builder classes by name, once per process)."""
    if "class" not in _TINY_TFDS:
        import tensorflow_datasets as tfds

        class ZooTinyShapes(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                return tfds.core.DatasetInfo(
                    builder=self, features=tfds.features.FeaturesDict({
                        "image": tfds.features.Image(shape=(8, 8, 1)),
                        "label": tfds.features.ClassLabel(names=["a", "b", "c"])}),
                    supervised_keys=("image", "label"))

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples(90, 0),
                        "test": self._generate_examples(30, 1)}

            def _generate_examples(self, n, seed):
                rng = np.random.default_rng(seed)
                for i in range(n):
                    yield i, {"image": rng.integers(0, 255, (8, 8, 1), dtype=np.uint8),
                              "label": i % 3}
        _TINY_TFDS["class"] = ZooTinyShapes
    return _TINY_TFDS["class"]


def _labels_of_passes(train, passes):
    it = iter(train.repeat())
    per_pass = int(train.cardinality())
    return [np.concatenate([np.asarray(next(it)[1]) for _ in range(per_pass)])
            for _ in range(passes)]


def test_tfds_in_memory_and_streamed(tmp_path, monkeypatch):
    # A global TensorFlow seed is set, as `zoo train` sets it: the streamed
    # shuffle used to fail then (a tensor seed in Dataset.shuffle).
    import keras
    keras.utils.set_random_seed(0)
    _tiny_tfds_builder()(data_dir=str(tmp_path)).download_and_prepare()
    small = data_lib.load("tfds:zoo_tiny_shapes", data_dir=str(tmp_path), batch_size=16)
    assert (small.info.num_train, small.info.num_val, small.info.num_test) == (81, 9, 30)
    # Larger than the cache: streamed from the TFDS files, shuffled per pass.
    monkeypatch.setattr(data_lib, "FOLDER_CACHE_BYTES", 0)
    big = data_lib.load("tfds:zoo_tiny_shapes", data_dir=str(tmp_path), batch_size=16)
    assert (big.info.num_train, big.info.num_val, big.info.num_test) == (81, 9, 30)
    assert big.info.image_shape == (8, 8, 1) and int(big.train.cardinality()) == 6
    first, second = _labels_of_passes(big.train, 2)
    assert sorted(first) == sorted(second) and len(first) == 81
    assert not np.array_equal(first, second)           # reshuffled each pass
    big.train_pass.assign(1)                           # a run resuming at pass 1
    (again,) = _labels_of_passes(big.train, 1)
    np.testing.assert_array_equal(again, second)
    x, _ = next(iter(big.test))
    assert x.shape[1:] == (8, 8, 1) and float(np.max(x)) <= 1.0
    # `limit` is honoured when streamed too (it used to be ignored, while the
    # search still sized its budgets with it).
    few = data_lib.load("tfds:zoo_tiny_shapes", data_dir=str(tmp_path), batch_size=16,
                        limit=20)
    assert few.info.num_train == 20
    (labels,) = _labels_of_passes(few.train, 1)
    assert len(labels) == 20


FIRST_BATCH = """
import sys
import numpy as np
from zoo import data
d = data.load("digits", limit=64, augment="light", channels=3, preprocessing_mode="caffe")
x, y = next(iter(d.train))
np.save(sys.argv[1], x.numpy())
"""


def test_pipeline_and_augmentation_do_not_depend_on_the_backend(tmp_path):
    # The tf.data pipeline (augmentation and scaling included) runs in
    # TensorFlow under every Keras backend, and draws the same batches.
    batches = {}
    for backend in ("tensorflow", "jax"):
        out = tmp_path / f"{backend}.npy"
        done = subprocess.run([sys.executable, "-c", FIRST_BATCH, str(out)],
                              capture_output=True, text=True, timeout=300,
                              env=subprocess_env(KERAS_BACKEND=backend))
        assert done.returncode == 0, done.stderr[-2000:]
        batches[backend] = np.load(out)
    assert np.isfinite(batches["jax"]).all()
    np.testing.assert_array_equal(batches["jax"], batches["tensorflow"])


def _class_folders(root, classes, rng, n=4, size=(8, 8)):
    for label in classes:
        (root / label).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 255, (*size, 3)).astype(np.uint8)
            Image.fromarray(img).save(root / label / f"{i}.png")


def test_folder_test_classes_are_matched_by_name(tmp_path, rng):
    # test/ lacks "ant": its cat and dog images used to get labels 0 and 1
    # (ant's and cat's) instead of 1 and 2.
    _class_folders(tmp_path / "train", ("ant", "cat", "dog"), rng)
    _class_folders(tmp_path / "test", ("cat", "dog"), rng, n=3)
    with pytest.warns(UserWarning, match="no images of class.*ant"):
        data = data_lib.load(f"folder:{tmp_path}", batch_size=8)
    labels = np.concatenate([np.asarray(y) for _, y in data.test])
    assert sorted(labels.tolist()) == [1, 1, 1, 2, 2, 2]
    assert data.info.class_names == ["ant", "cat", "dog"]


def test_folder_test_class_unknown_to_training_is_refused(tmp_path, rng):
    _class_folders(tmp_path / "train", ("cat", "dog"), rng)
    _class_folders(tmp_path / "test", ("cat", "dog", "eel"), rng)
    with pytest.raises(DataError, match="eel.*training split lacks"):
        data_lib.load(f"folder:{tmp_path}", batch_size=8)


def test_folder_limit_is_honoured(tmp_path, rng):
    _class_folders(tmp_path, ("cat", "dog"), rng, n=10)
    data = data_lib.load(f"folder:{tmp_path}", batch_size=4, validation_split=0.2,
                         limit=6)
    assert data.info.num_train == 6
    labels = np.concatenate([np.asarray(y) for _, y in data.train.take(2)])
    assert set(labels.tolist()) == {0, 1}         # a random subset, not one class


def test_undecodable_image_is_named(tmp_path, rng):
    _class_folders(tmp_path, ("cat", "dog"), rng)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"broken\.png is not a PNG, JPEG, BMP or GIF"):
        data_lib.load(f"folder:{tmp_path}", batch_size=4)
    # A real PNG header with a damaged body is named when it is decoded.
    good = (tmp_path / "dog" / "0.png").read_bytes()
    (tmp_path / "dog" / "broken.png").write_bytes(good[:40])
    with pytest.raises(DataError, match=r"broken\.png cannot be decoded"):
        data_lib.load(f"folder:{tmp_path}", batch_size=4)


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
