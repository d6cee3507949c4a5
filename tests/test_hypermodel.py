"""ZooHyperModel and the state the folds of a trial share (tuning.hypermodel)."""

import keras
import keras_tuner
import numpy as np

from helpers import shallow_resnet
from tuning import plan as plan_lib
from tuning.hypermodel import InitialState, ZooHyperModel


def test_later_folds_restart_from_the_initial_state_without_a_new_trace(monkeypatch):
    from keras.src.backend.tensorflow import trainer
    traces = []
    real = trainer.TensorFlowTrainer.train_step

    def counted(self, data):
        traces.append(1)
        return real(self, data)
    monkeypatch.setattr(trainer.TensorFlowTrainer, "train_step", counted)
    plan = plan_lib.plan_trials(1437, trial_steps=4)
    hm = ZooHyperModel(shallow_resnet(monkeypatch), 10, (8, 8, 1), dataset="digits",
                       data_kwargs={"limit": 96}, plan=plan)
    hp = keras_tuner.HyperParameters()
    model = hm.build(hp)
    hm.prepare(hp, model, (0, 3))
    start = InitialState(model)
    before = [w.copy() for w in model.get_weights()]
    hm.fit(hp, model, fold=(0, 3), epochs=plan.epochs, verbose=0)
    assert int(model.optimizer.iterations) == plan.total_steps
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    start.restore(model)
    # The second fold starts where the first did: same weights, a fresh optimizer.
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert int(model.optimizer.iterations) == 0
    assert all(not np.any(v.numpy()) for v in model.optimizer.variables
               if "momentum" in v.path or "velocity" in v.path)
    hm.fit(hp, model, fold=(1, 3), epochs=plan.epochs, verbose=0)
    assert int(model.optimizer.iterations) == plan.total_steps
    # One trace of the training step for both folds.
    assert len(traces) == 1
    keras.backend.clear_session()


def test_a_space_without_label_smoothing_trains_with_the_recipes_on_one_hot_labels(
        monkeypatch):
    # The knob left out of the space: a trial uses zoo train's smoothing
    # (as the final retraining does), and its loss and labels agree.
    from zoo.recipe import RECIPE
    assert RECIPE.label_smoothing > 0
    plan = plan_lib.plan_trials(1437, trial_steps=2)
    hm = ZooHyperModel(shallow_resnet(monkeypatch), 10, (8, 8, 1), {"label_smoothing": None},
                       dataset="digits", data_kwargs={"limit": 64}, plan=plan)
    hp = keras_tuner.HyperParameters()
    model = hm.build(hp)
    assert "label_smoothing" not in hp.values
    assert model.loss.get_config()["label_smoothing"] == RECIPE.label_smoothing
    train, _ = hm.prepare(hp, model, (0, 3))
    _, labels = next(iter(train))
    assert labels.shape[-1] == 10                       # one-hot, as the loss needs
    hm.fit(hp, model, fold=(0, 3), epochs=plan.epochs, verbose=0)
    assert np.isfinite(model.get_weights()[0]).all()
    keras.backend.clear_session()


def test_trials_train_with_the_recipes_augmentation_unless_the_space_sets_it():
    # The final retraining augments; trials that rank configurations for it
    # train the same way (issue #27), so a trial of the focused space (no
    # augment knob) draws translated images, and a space that fixes
    # augment to none gets plain ones.
    plan = plan_lib.plan_trials(1437, trial_steps=2)
    hm = ZooHyperModel("resnet20", 10, (8, 8, 1), dataset="digits",
                       data_kwargs={"limit": 64}, plan=plan)
    hp = keras_tuner.HyperParameters()
    hm.build(hp)
    assert "augment" not in hp.values
    augmenter = hm.trial_data(hp, (0, 3)).augmenter
    assert augmenter is not None
    assert "RandomTranslation" in [type(layer).__name__ for layer in augmenter.layers]
    plain = ZooHyperModel("resnet20", 10, (8, 8, 1), {"augment": {"value": "none"}},
                          dataset="digits", data_kwargs={"limit": 64}, plan=plan)
    hp = keras_tuner.HyperParameters()
    plain.build(hp)
    assert hp.values["augment"] == "none"
    assert plain.trial_data(hp, (0, 3)).augmenter is None
    keras.backend.clear_session()
