"""Trial records, median stopping and racing over folds (tuning.recorder)."""

import json

import keras

from tuning.recorder import TrialRecorder


def peers(folder, curves):
    """Trial records of finished trials with these objective curves."""
    for trial_id, curve in curves.items():
        path = folder / "trial_info" / f"{trial_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"trial_id": trial_id, "curve": curve}))


def test_median_stopping_prunes_a_bad_trial(tmp_path, rng):
    peers(tmp_path, {"00": [0.9, 0.95, 0.97], "01": [0.8, 0.9, 0.93]})
    recorder = TrialRecorder(tmp_path, "val_accuracy", "max", min_trials=2)
    recorder.begin_trial("02")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.random((32, 4)), rng.integers(0, 3, 32)
    model.fit(x, y, validation_data=(x, y), epochs=5, verbose=0, callbacks=[recorder])
    recorder.end_trial(model)
    info = json.loads((tmp_path / "trial_info" / "02.json").read_text())
    # Not before the grace period (2 epochs), then at once.
    assert info["pruned"] is True and info["epochs_run"] == 2
    assert len(info["curve"]) == 2
    # A trial above the median keeps going.
    peers(tmp_path, {"00": [0.0] * 5, "01": [0.0] * 5})
    good = TrialRecorder(tmp_path, "val_accuracy", "max", min_trials=2)
    good.begin_trial("03")
    model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0, callbacks=[good])
    assert good.epochs_run == 3 and not good.pruned


def test_median_stopping_never_prunes_a_finished_trial(tmp_path):
    # A trial at its last epoch, worse than the median of finished trials:
    # its score is final, so it is not PRUNED (it used to be with --epochs 1).
    peers(tmp_path, {"a": [0.9, 0.9], "b": [0.8, 0.8]})
    recorder = TrialRecorder(tmp_path, "val_accuracy", "max", min_trials=2,
                             grace_epochs=1)
    recorder.begin_trial("t1")
    recorder.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    recorder.set_params({"epochs": 2})
    recorder.on_epoch_end(0, {"val_accuracy": 0.1, "loss": 1.0})
    assert recorder.pruned             # worse than the median, epochs remain
    recorder.begin_trial("t2")
    recorder.model.stop_training = False
    recorder.on_epoch_end(1, {"val_accuracy": 0.1, "loss": 1.0})
    assert not recorder.pruned and not recorder.model.stop_training


def test_median_stopping_records_an_unreadable_peer(tmp_path):
    peers(tmp_path, {"a": [0.9, 0.9], "b": [0.8, 0.8]})
    (tmp_path / "trial_info" / "c.json").write_text("{not json")
    recorder = TrialRecorder(tmp_path, "val_accuracy", "max", min_trials=2,
                             grace_epochs=1)
    recorder.begin_trial("t1")
    recorder.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    recorder.set_params({"epochs": 3})
    recorder.on_epoch_end(0, {"val_accuracy": 0.5, "loss": 1.0})
    assert recorder.prune_error.startswith("c.json: JSONDecodeError")
    assert recorder.pruned          # the two readable peers still decide


def test_racing_sends_only_the_best_first_folds_on(tmp_path):
    # Records of finished trials with these first-fold scores.
    for trial_id, first in {"00": 0.9, "01": 0.8, "02": None}.items():
        path = tmp_path / "trial_info" / f"{trial_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"fold_scores": [] if first is None else [first]}))
    recorder = TrialRecorder(tmp_path, "val_accuracy", "max")
    recorder.begin_trial("03")
    assert recorder.goes_on(0.85, finalists=2)       # second best so far
    assert not recorder.goes_on(0.75, finalists=2)   # third
    assert recorder.goes_on(0.95, finalists=1) and not recorder.goes_on(0.85, finalists=1)
    loss = TrialRecorder(tmp_path, "val_loss", "min")
    loss.begin_trial("03")
    assert loss.goes_on(0.7, finalists=1) and not loss.goes_on(0.95, finalists=2)
