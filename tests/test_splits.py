"""Validation splits and k-fold partitions (zoo.splits)."""


import numpy as np
import pytest

from zoo import data as data_lib
from zoo.data import DataError
from zoo.splits import limit_subset


def test_splits_are_deterministic_and_disjoint():
    a = data_lib.load("digits", batch_size=2000, seed=3)
    b = data_lib.load("digits", batch_size=2000, seed=3)
    va, vb = next(iter(a.val))[0].numpy(), next(iter(b.val))[0].numpy()
    np.testing.assert_array_equal(va, vb)
    test = next(iter(a.test))[0].numpy()
    c = data_lib.load("digits", batch_size=2000, seed=4)
    np.testing.assert_array_equal(test, next(iter(c.test))[0].numpy())
    assert not np.array_equal(va, next(iter(c.val))[0].numpy())


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


def test_limit_keeps_a_random_subset_and_refuses_one_that_loses_a_class():
    # A source listed class by class: the first 20 images are all class 0.
    y = np.repeat(np.arange(5), 40)
    x = np.arange(len(y))
    xs, ys = limit_subset(x, y, 20, seed=0)
    assert len(ys) == 20 and set(ys.tolist()) == set(range(5))
    np.testing.assert_array_equal(y[xs], ys)            # images keep their labels
    again, _ = limit_subset(x, y, 20, seed=0)
    np.testing.assert_array_equal(xs, again)            # seeded
    assert limit_subset(x, y, None, seed=0)[0] is x     # no limit, no copy
    with pytest.raises(DataError, match=r"limit=3 keeps 3 of 200 training images, "
                                        r"which lack class\(es\)"):
        limit_subset(x, y, 3, seed=0)
