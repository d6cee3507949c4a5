"""zoo.recipe: one set of training defaults for every path, and the model
selection rule (issue #27)."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import shallow_resnet
from zoo import augment, training
from zoo.recipe import RECIPE, Recipe


def test_every_path_takes_the_one_recipe():
    # zoo train (TrainConfig and its flags), --fine-tune's rate, the
    # search's first trial and final retraining, and zoo demo: each read
    # the recipe instead of a value of its own.
    from tuning import final, spaces
    from zoo import cli, demo
    defaults = {f.name: f.default for f in dataclasses.fields(training.TrainConfig)}
    args = cli.build_parser().parse_args(["train", "resnet20", "--dataset", "digits",
                                          "--out", "o"])
    assert args.min_steps is None          # not given: --epochs may be
    flags = cli._train_config(args)
    assert (flags.label_smoothing, flags.learning_rate, flags.batch_size) == \
        (RECIPE.label_smoothing, RECIPE.lr["adam"], RECIPE.batch_size)
    assert defaults["min_steps"] == cli._train_config(args).min_steps == RECIPE.min_steps
    assert defaults["min_image_size"] == flags.min_image_size == RECIPE.min_image_size
    assert final.train_config({}, "resnet20", "digits", {}).min_image_size \
        == RECIPE.min_image_size
    assert defaults["augment"] is None and args.augment is None     # the recipe's
    config = training.TrainConfig("resnet20")
    assert config.augmentation == RECIPE.augment
    config = training.TrainConfig("resnet20", weights="fashion_mnist", fine_tune=True)
    assert config.augmentation == RECIPE.augment != "none"
    assert training.TrainConfig("resnet20", augment="strong").augmentation == "strong"
    assert training.FINE_TUNE_LR is RECIPE.fine_tune_lr
    scratch = training.TrainConfig("resnet20")
    assert scratch.learning_rate == RECIPE.lr["adam"] == spaces.TRAIN_DEFAULTS["learning_rate"]
    assert scratch.label_smoothing == RECIPE.label_smoothing \
        == spaces.TRAIN_DEFAULTS["label_smoothing"]
    assert training.TrainConfig("resnet20", optimizer="sgd").learning_rate == 0.1
    assert spaces.TRAIN_DEFAULTS["augment"] == RECIPE.augment
    # The schedule: zoo train, its flag, the search's fixed value and the
    # Python API's fine-tune (its phase 2 optimizer) read the recipe's.
    assert defaults["schedule"] == args.schedule == flags.schedule == RECIPE.schedule
    assert spaces.FOCUSED["schedule"] == {"value": RECIPE.schedule}
    assert spaces.TRAIN_DEFAULTS["schedule"] == RECIPE.schedule
    assert final.final_recipe({}, {}) == {"min_steps": RECIPE.min_steps,
                                          "augment": RECIPE.augment}
    config = demo.train_config(quick=False)
    assert (config.augmentation, config.min_steps, config.selection) == \
        (RECIPE.augment, RECIPE.min_steps, None)


def test_tiny_images_are_trained_at_the_recipes_floor(tmp_path):
    # scikit-learn's digits are 8×8: zoo train and zoo tune take them at
    # twice that (the floor, 16) unless an image size or another floor is
    # given; images at least that large keep their size.
    import importlib
    import inspect
    search = importlib.import_module("tuning.search")
    from tuning import final
    from zoo.input_pipeline import image_hw

    def shape(**fields):
        config = training.TrainConfig("resnet20", dataset="digits", **fields)
        config.validate()
        return training._load_data(config, None).info.image_shape

    assert shape() == (16, 16, 1)
    # The run says so (and not when the size was given).
    config = training.TrainConfig("resnet20", dataset="digits")
    info = training._load_data(config, None).info
    assert "at 16×16, resized up from 8×8 (the recipe's floor" in config.images_line(info)
    sized = training.TrainConfig("resnet20", dataset="digits", image_size=16)
    assert "resized" not in sized.images_line(training._load_data(sized, None).info)
    assert shape(image_size=8) == (8, 8, 1) and shape(min_image_size=8) == (8, 8, 1)
    assert shape(min_image_size=20) == (20, 20, 1)
    assert image_hw(None, (28, 28), 16) == (28, 28)
    assert image_hw(None, (12, 20), 16) == (16, 27)      # aspect kept, rounded up
    assert image_hw((9, 7), (8, 8), 16) == (9, 7) and image_hw(None, (8, 8)) == (8, 8)
    call = {k: p.default for k, p in inspect.signature(search.search).parameters.items()}
    call.update(model_name="resnet20", dataset="digits", out=tmp_path)
    assert search._setup(call)["info"].image_shape == (16, 16, 1)
    call.update(image_size=8, out=tmp_path / "at 8")
    assert search._setup(call)["info"].image_shape == (8, 8, 1)
    # zoo tune --min-image-size: another floor, for the trials and the
    # final retraining alike.
    call.update(image_size=None, min_image_size=12, out=tmp_path / "floor 12")
    setup = search._setup(call)
    assert setup["info"].image_shape == (12, 12, 1)
    assert final.train_config({}, "resnet20", "digits",
                              setup["data_kwargs"]).min_image_size == 12
    with pytest.raises(ValueError, match="with image_size=8 it would have no effect"):
        search.check_arguments("resnet20", "digits", image_size=8, min_image_size=12)


def test_the_default_augmentation_never_flips():
    # A flip changes what digits, letters and many medical or industrial
    # images mean (benchmarks/flip.py); only `natural` and stronger presets
    # flip, and only when asked for.
    assert RECIPE.augment != "none"
    assert not augment.PRESETS[RECIPE.augment].get("flip")


def test_a_default_run_erases_patches_of_its_training_images_only():
    # The recipe's augmentation is translation plus Keras' RandomErasing
    # (docs/training.md, "Random erasing"): against translation alone with
    # the same seed (the same shifts), some training images lose a patch,
    # never most of the image; test images are not augmented.
    from zoo import data as data_lib
    config = training.TrainConfig("resnet20", dataset="digits")

    def batches(preset):
        d = data_lib.load("digits", image_size=16, augment=preset, seed=0, batch_size=64)
        train = np.concatenate([x.numpy() for x, _ in d.train.take(4)])
        return train.reshape(len(train), -1), np.concatenate([x.numpy() for x, _ in d.test])

    erased, test = batches(config.augmentation)
    shifted, test_light = batches("light")
    assert not np.isnan(erased).any()
    changed = (erased != shifted).mean(axis=1)
    assert 0 < (changed > 0).mean() < 0.5 and changed.max() < 0.5
    np.testing.assert_array_equal(test, test_light)


def test_selection_rule_trusts_the_best_epoch_only_on_a_large_split():
    recipe = Recipe(min_val_for_best=1000)
    assert recipe.selection(50) == "last" and recipe.selection(999) == "last"
    assert recipe.selection(1000) == "best" and recipe.selection(5400) == "best"
    assert RECIPE.selection(50) == "last"       # a 500-image set's 50


def test_the_recipe_holds_out_a_split_only_where_it_can_choose_an_epoch():
    recipe = Recipe(validation_split=0.1, min_val_for_best=1000)
    assert recipe.holdout(500) == 0.0 and recipe.holdout(9990) == 0.0
    assert recipe.holdout(9991) == 0.1 and recipe.holdout(60000) == 0.1
    from zoo.splits import train_val_split
    y = np.repeat(np.arange(10), 50)
    xtr, ytr, xva, yva = train_val_split(np.arange(500), y, None, 0)
    assert len(ytr) == 500 and len(yva) == 0
    y = np.repeat(np.arange(10), 1000)
    xtr, ytr, xva, yva = train_val_split(np.arange(10000), y, None, 0)
    assert (len(ytr), len(yva)) == (9000, 1000)
    assert len(train_val_split(np.arange(500), np.repeat(np.arange(10), 50), 0.1, 0)[3]) == 50


@pytest.mark.slow
def test_a_small_default_run_trains_on_every_labelled_image(tmp_path, monkeypatch):
    # digits: 1,437 labelled images, 144 would be held out: below
    # min_val_for_best, so none is; the last epoch is kept.
    model = shallow_resnet(monkeypatch)
    config = training.TrainConfig(model, epochs=1, image_size=8, limit=200)
    assert config.validation_split is None
    metrics = training.train(config, tmp_path / "run", verbose=0)
    assert metrics["dataset"]["num_val"] == 0 and metrics["dataset"]["num_train"] == 200
    assert metrics["selection"] == "last"
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0].split(",")
    assert "val_accuracy" not in header
    # The same run asked to keep its best epoch is refused before training.
    best = training.TrainConfig(model, epochs=1, image_size=8, limit=200,
                                selection="best")
    message = "selection 'best' needs a validation split.*--validation-split 0.1"
    with pytest.raises(ValueError, match=message):
        training.train(best, tmp_path / "best", verbose=0)
    assert not (tmp_path / "best" / "model.keras").exists()
    # An explicit split is honoured.
    held = training.train(training.TrainConfig(model, epochs=1, image_size=8,
                                               limit=200, validation_split=0.1),
                          tmp_path / "held", verbose=0)
    assert held["dataset"]["num_val"] == 144


def _two_checkpoints(tmp_path):
    """A model whose weights score 0.0 on `test`, and best.keras in
    `tmp_path` with weights that score 1.0."""
    x = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype("int32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    right = [np.array([[-50, 50], [0, 0], [0, 0], [0, 0]], np.float32),
             np.array([25, -25], np.float32)]
    model.set_weights(right)
    model.save(tmp_path / "best.keras")
    wrong = [-right[0], -right[1]]
    model.set_weights(wrong)
    return model, right, wrong, tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


Info = dataclasses.make_dataclass("Info", [("num_val", int), ("test_is_validation", bool)])


@pytest.mark.parametrize("selection", ["last", "best"])
def test_the_kept_model_is_the_selected_one(tmp_path, selection):
    # best.keras holds weights A (a model that scores 1.0 on the data), the
    # model in memory weights B (one that scores 0.0): the metrics and the
    # model left in memory must be those of the selection.
    model, right, wrong, test = _two_checkpoints(tmp_path)
    info = Info(50, False)
    config = training.TrainConfig("resnet20", selection=selection)
    result = training._select_and_test(config, model, info, test, tmp_path)
    assert result["selection"] == selection
    assert result["test_accuracy_by_selection"] == {"last": 0.0, "best": 1.0}
    assert result["test_accuracy"] == (1.0 if selection == "best" else 0.0)
    kept = right if selection == "best" else wrong
    for value, expected in zip(model.get_weights(), kept):
        np.testing.assert_array_equal(value, expected)


def test_the_test_images_never_choose_the_epoch_where_they_are_the_validation_split(
        tmp_path):
    # A folder without test/ tests on its validation part: with 2,000 such
    # images the recipe's rule would keep the best epoch, chosen on the very
    # images that then score it; the last epoch is kept instead.
    model, _, wrong, test = _two_checkpoints(tmp_path)
    config = training.TrainConfig("resnet20")
    assert RECIPE.selection(2000) == "best"
    result = training._select_and_test(config, model, Info(2000, True), test, tmp_path)
    assert result["selection"] == "last" and result["test_accuracy"] == 0.0
    assert result["test_accuracy_by_selection"]["best"] == 1.0    # reported only
    for value, expected in zip(model.get_weights(), wrong):
        np.testing.assert_array_equal(value, expected)
    # With a separate test split the rule's best epoch is kept.
    model, right, _, test = _two_checkpoints(tmp_path)
    result = training._select_and_test(config, model, Info(2000, False), test, tmp_path)
    assert result["selection"] == "best" and result["test_accuracy"] == 1.0


def test_the_docs_table_states_the_recipe():
    # docs/training.md lists every field of the recipe with its value.
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text(
        encoding="utf-8")
    rows = {line.split(" | ")[0][3:-1]: line.split(" | ")[1]
            for line in doc.splitlines() if line.startswith("| `")}
    for field in dataclasses.fields(Recipe):
        value = getattr(RECIPE, field.name)
        shown = rows[field.name]
        if isinstance(value, int):
            assert shown == f"{value:,}", field.name
        elif isinstance(value, str):
            assert shown == f"`{value}`", field.name
        elif isinstance(value, float):
            assert shown == f"{value:g}", field.name
        else:
            assert all(f"{v:g}" in shown for v in value.values()), field.name
