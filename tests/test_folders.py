"""Image folders: classes by name across splits, limits, undecodable files (zoo.folders)."""


import numpy as np
import pytest
from PIL import Image

from zoo import data as data_lib
from zoo.data import DataError


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


def test_single_class_and_empty_folders(tmp_path):
    (tmp_path / "only").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError, match="at least two classes; found 1"):
        data_lib.load(f"folder:{tmp_path}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="without images.*empty"):
        data_lib.load(f"folder:{tmp_path}")


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
