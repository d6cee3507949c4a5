"""TensorFlow Datasets sources, in memory and streamed (zoo.tfds_source)."""


import numpy as np
import pytest

import zoo.folders
from zoo import data as data_lib


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
    monkeypatch.setattr(zoo.folders, "FOLDER_CACHE_BYTES", 0)   # read at load time
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
