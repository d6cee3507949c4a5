"""Using a saved model (zoo.inference): evaluation of logits and probability
models, and the files beside a model (config.json, metrics.json) refused
when damaged."""

import numpy as np
import pytest

from helpers import shallow_resnet
import zoo


def test_evaluate_loss_of_a_logits_model(tmp_path):
    # The loss assumed softmax outputs: for classifier_activation=None it
    # was computed on clipped logits.
    from zoo import inference
    logits = zoo.create_model("resnet20", input_shape=(8, 8, 1),
                              classifier_activation=None)
    softmax = zoo.create_model("resnet20", input_shape=(8, 8, 1))
    softmax.set_weights(logits.get_weights())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    logits.save(tmp_path / "a" / "m.keras")
    softmax.save(tmp_path / "b" / "m.keras")
    a = inference.evaluate(tmp_path / "a" / "m.keras", "digits", limit=64)
    b = inference.evaluate(tmp_path / "b" / "m.keras", "digits", limit=64)
    assert np.isfinite(a["loss"]) and a["loss"] > 0
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert a["accuracy"] == b["accuracy"]


def test_damaged_config_is_not_silently_ignored(tmp_path):
    from zoo import inference
    from zoo.errors import InputError
    zoo.create_model("resnet20", input_shape=(8, 8, 1)).save(tmp_path / "m.keras")
    (tmp_path / "config.json").write_text('{"preprocessing": "tf", ')
    with pytest.raises(InputError, match="config.json .beside the model. is damaged.*"
                                         "--preprocessing"):
        inference.evaluate(tmp_path / "m.keras", "digits", limit=8)
    result = inference.evaluate(tmp_path / "m.keras", "digits", limit=8,
                                preprocessing_mode="unit")
    assert result["examples"] == 8


def test_damaged_run_card_is_refused(tmp_path):
    # A damaged metrics.json used to fall back to numeric class names.
    from zoo import inference
    from zoo.errors import InputError
    (tmp_path / "metrics.json").write_text('{"dataset": {"class_names": ["cat", ')
    with pytest.raises(InputError, match=r"metrics.json \(beside the model\) is damaged"):
        inference.class_names(tmp_path / "m.keras", 2)
    (tmp_path / "metrics.json").write_text('{"dataset": {"class_names": ["cat", "dog"]}}')
    assert inference.class_names(tmp_path / "m.keras", 2) == ["cat", "dog"]


def test_a_runs_test_loss_is_the_one_zoo_evaluate_reports(tmp_path, monkeypatch):
    # metrics.json's test_loss was the label-smoothed training loss: 0.5179
    # against zoo evaluate's 0.0999 for the demo's model, at one accuracy.
    import math
    from zoo import inference, training
    config = training.TrainConfig(shallow_resnet(monkeypatch), dataset="digits",
                                  image_size=8, epochs=3, label_smoothing=0.3)
    metrics = training.train(config, tmp_path / "run", verbose=0)
    again = inference.evaluate(tmp_path / "run" / "model.keras", "digits")
    assert not math.isnan(metrics["test_loss"]) and metrics["test_accuracy"] > 0.5
    assert metrics["test_accuracy"] == pytest.approx(again["accuracy"], abs=1e-6)
    assert metrics["test_loss"] == pytest.approx(again["loss"], rel=1e-3)
    # The file is compiled for class indices, as users' labels are.
    import keras
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    x = np.zeros((4, 8, 8, 1), np.float32)
    loss, accuracy = model.evaluate(x, np.arange(4), verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
