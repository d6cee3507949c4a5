"""keras-tuner searches over zoo models (issue #5)."""

import builtins
import csv
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import keras
import keras_tuner
import pytest
from hypothesis import given, settings, strategies as st

import tuning
import zoo
from conftest import subprocess_env
from tuning import distributed, spaces
from tuning.search import TrialRecorder, ZooHyperModel, pareto_front, search

TINY = dict(limit=128, epochs=1)


def rows(out):
    with open(out / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("kind", tuning.TUNERS)
def test_each_tuner_runs_two_trials_and_exports(kind, tmp_path):
    # The random search also exports a Pareto front (val_accuracy vs params,
    # two depths), so one search covers both.
    pareto = kind == "random"
    result = search("resnet20", "digits", tuner=kind, max_trials=2, out=tmp_path,
                    objective="val_accuracy,params" if pareto else "val_accuracy",
                    space={"optimizer": {"values": ["adam", "sgd"]},
                           "learning_rate": {"values": [1e-3, 1e-2]},
                           "regularizer": None, "augment": None, "dropout": None,
                           "label_smoothing": None, "schedule": None,
                           "batch_size": {"value": 64},
                           "depth": {"values": [20, 32]} if pareto else None},
                    **TINY)
    trials = rows(tmp_path)
    assert len(trials) == 2 and all(t["status"] == "COMPLETED" for t in trials)
    assert {"trial_id", "status", "optimizer", "learning_rate", "score", "epochs_run",
            "wall_time_s", "params", "rss_mb"} <= set(trials[0])
    best = json.loads((tmp_path / "best_hyperparameters.json").read_text())
    best_row = max(trials, key=lambda r: float(r["score"]))
    assert best["trial_id"] == best_row["trial_id"] == result["best_trial"]
    assert best["values"]["optimizer"] == best_row["optimizer"]
    model = keras.models.load_model(tmp_path / "best_model.keras", safe_mode=True)
    assert model.output_shape == (None, 10)
    assert (tmp_path / "objective_by_trial.png").is_file()
    if pareto:
        with open(tmp_path / "pareto.csv") as f:
            front = list(csv.DictReader(f))
        assert [r["trial_id"] for r in front] == result["pareto"]
        for r in trials:        # nothing outside the front dominates a front member
            for f in front:
                assert not (float(r["score"]) > float(f["score"])
                            and int(r["params"]) < int(f["params"]))
        assert (tmp_path / "pareto.png").is_file()


def test_conditional_knobs_only_with_their_parent():
    space = spaces.resolve_space("resnet20", {"optimizer": {"value": "adam"}})
    hp = keras_tuner.HyperParameters()
    spaces.optimizer(hp, space)
    spaces.regularizer(hp, space)
    assert {"beta_1", "beta_2", "epsilon"} <= set(hp.values)
    assert "momentum" not in hp.values and "rho" not in hp.values
    assert "weight_decay" not in hp.values
    space = spaces.resolve_space("resnet20", {"optimizer": {"value": "nesterov"},
                                              "regularizer": {"value": "l2"}})
    hp = keras_tuner.HyperParameters()
    spaces.optimizer(hp, space)
    spaces.regularizer(hp, space)
    assert "momentum" in hp.values and "beta_1" not in hp.values
    assert "l2" in hp.values and "l1" not in hp.values


def test_a_sampled_zero_stays_zero():
    # momentum, rho and beta_1 of 0 are legal; `x or 0.9` used to turn them
    # into 0.9.
    for optimizer, knob, attribute in (("momentum", "momentum", "momentum"),
                                       ("rmsprop", "rho", "rho"),
                                       ("adam", "beta_1", "beta_1")):
        space = spaces.resolve_space("resnet20", {"optimizer": {"value": optimizer},
                                                  knob: {"value": 0.0}})
        built = spaces.optimizer(keras_tuner.HyperParameters(), space)
        assert float(getattr(built, attribute)) == 0.0, (optimizer, knob)


def test_architecture_knobs_build_other_variants():
    hm = ZooHyperModel("resnet20", 10, (8, 8, 1),
                       space={"depth": {"value": 32}, "optimizer": {"value": "adam"}})
    model = hm.build(keras_tuner.HyperParameters())
    assert model.name == "resnet32"
    hm = ZooHyperModel("mobilenet_v2_050_cifar", 10, (16, 16, 1),
                       space={"width_multiplier": {"value": 0.75}})
    narrow = hm.build(keras_tuner.HyperParameters())
    assert narrow.get_layer("Conv1").filters == 24


class FakeTrial:
    def __init__(self, trial_id, history):
        self.trial_id = trial_id
        self.status = "COMPLETED"
        from keras_tuner.src.engine.metrics_tracking import MetricsTracker
        self.metrics = MetricsTracker()
        for step, value in enumerate(history):
            self.metrics.update("val_accuracy", value, step=step)


class FakeOracle:
    def __init__(self, trials):
        self.trials = trials

    def get_best_trials(self, n):
        return self.trials


def test_median_stopping_prunes_a_bad_trial(tmp_path, rng):
    recorder = TrialRecorder(tmp_path, "val_accuracy", "max", min_trials=2)
    recorder.trial_id = "02"
    recorder.oracle = FakeOracle([FakeTrial("00", [0.9, 0.95, 0.97]),
                                  FakeTrial("01", [0.8, 0.9, 0.93])])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.random((32, 4)), rng.integers(0, 3, 32)
    model.fit(x, y, validation_data=(x, y), epochs=5, verbose=0, callbacks=[recorder])
    info = json.loads((tmp_path / "trial_info" / "02.json").read_text())
    assert info["pruned"] is True and info["epochs_run"] == 1
    # A trial above the median keeps going.
    good = TrialRecorder(tmp_path, "val_accuracy", "max", min_trials=2)
    good.trial_id = "03"
    good.oracle = FakeOracle([FakeTrial("00", [0.0, 0.0, 0.0, 0.0, 0.0]),
                              FakeTrial("01", [0.0, 0.0, 0.0, 0.0, 0.0])])
    model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0, callbacks=[good])
    assert json.loads((tmp_path / "trial_info" / "03.json").read_text())["epochs_run"] == 3


def test_pareto_front_on_constructed_case():
    points = [(0.90, 100), (0.80, 50), (0.85, 200), (0.70, 40), (0.80, 60)]
    assert pareto_front(points, ["max", "min"]) == [0, 1, 3]


BAD = [
    (dict(space={"optimizer": {"values": ["adam", "lion"]}}), "Unknown optimizer value"),
    (dict(space={"regularizer": {"values": ["l3"]}}), "Unknown regularizer value"),
    (dict(space={"optimizer": {"values": []}}), "empty choice list"),
    (dict(space={"learning_rate": {"min": 0.1, "max": 0.01}}), "min 0.1 > max 0.01"),
    (dict(space={"speed": {"values": [1]}}), "Unknown search knob 'speed'"),
    (dict(max_trials=0), "max_trials must be an integer >= 1"),
    (dict(objective="val_f1"), "does not produce objective 'val_f1'"),
    (dict(objective="params"), "must be a model metric"),
    (dict(tuner="evolution"), "Unknown tuner 'evolution'"),
    (dict(epochs=0), "epochs must be an integer >= 1; got 0"),
    (dict(epochs=2.5), "epochs must be an integer >= 1; got 2.5"),
    (dict(no_validation=True), "needs a validation split"),
]


@pytest.mark.parametrize("kwargs,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_fails_before_first_trial(kwargs, message, tmp_path, monkeypatch):
    kwargs = dict(kwargs)
    if kwargs.pop("no_validation", False):
        # A source that yields no validation images.
        data_lib = sys.modules["tuning.search"].data_lib
        real = data_lib.load
        monkeypatch.setattr(data_lib, "load",
                            lambda *a, **k: real(*a, validation_split=0.0, **k))
    with pytest.raises(ValueError, match=message):
        search("resnet20", "digits", out=tmp_path / "o", **kwargs)
    assert not (tmp_path / "o" / "search").exists()


def test_space_file_errors(tmp_path):
    bad = tmp_path / "space.json"
    bad.write_text('{"optimizer": {"values": ["adam", "adamz"]}}')
    with pytest.raises(ValueError, match="Unknown optimizer value"):
        search("resnet20", "digits", out=tmp_path / "o", space=str(bad))
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        spaces.load_space(bad)


# The specification restated: what a number of each numeric knob may be.
NUMERIC = {
    "learning_rate": lambda v: v > 0, "epsilon": lambda v: v > 0,
    "momentum": lambda v: 0 <= v < 1, "rho": lambda v: 0 <= v < 1,
    "beta_1": lambda v: 0 <= v < 1, "beta_2": lambda v: 0 <= v < 1,
    "dropout": lambda v: 0 <= v < 1, "label_smoothing": lambda v: 0 <= v < 1,
    "weight_decay": lambda v: v >= 0, "l1": lambda v: v >= 0, "l2": lambda v: v >= 0,
    "batch_size": lambda v: v >= 1 and v == int(v), "depth": lambda v: v in (20, 32, 44, 56),
}
number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 300),
                   st.booleans(), st.text(max_size=3))
spec = st.one_of(
    st.none(), st.integers(),
    st.fixed_dictionaries({"values": st.lists(st.one_of(number, st.sampled_from(
        ["adam", "sgd", "l2", "cosine", "light", "lion"])), max_size=3)}),
    st.fixed_dictionaries({"value": number}),
    st.fixed_dictionaries({"min": number, "max": number},
                          optional={"sampling": st.sampled_from(["linear", "log", "cubic"]),
                                    "step": number}),
    st.dictionaries(st.sampled_from(["values", "min", "speed"]), number, max_size=2))


@settings(max_examples=150, deadline=None)
@given(knob=st.sampled_from(spaces.KNOBS[:16] + ("depth", "nonsense")), spec=spec)
def test_random_space_specs_give_space_or_value_error(knob, spec):
    try:
        space = spaces.resolve_space("resnet20", {knob: spec})
    except ValueError:
        return
    assert space[knob] == spec
    if spec is None or knob not in NUMERIC:
        return
    numbers = spec.get("values", []) + [spec[k] for k in ("value", "min", "max")
                                        if k in spec]
    for v in numbers:
        assert isinstance(v, (int, float)) and not isinstance(v, bool), (knob, v)
        assert math.isfinite(v) and NUMERIC[knob](v), (knob, v)
    # An accepted space builds: its first trial's optimizer and regularizer.
    hp = keras_tuner.HyperParameters()
    spaces.optimizer(hp, space)
    regularizer = spaces.regularizer(hp, space)
    if regularizer:
        zoo.factory.parse_regularizer(regularizer)


def test_missing_scikit_learn_for_bayesian(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ValueError, match="bayesian tuner needs scikit-learn"):
        search("resnet20", "digits", tuner="bayesian", out=tmp_path)


def _env():
    return subprocess_env()


TUNE = ["tune", "resnet20", "--dataset", "digits", "--tuner", "random",
        "--max-trials", "3", "--epochs", "2", "--limit", "128", "--seed", "1"]


@pytest.mark.slow
def test_sigkill_during_search_resumes(tmp_path):
    out = tmp_path / "search"
    argv = [sys.executable, "-m", "zoo.cli", *TUNE, "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env())
    deadline = time.time() + 300
    info = out / "trial_info"
    while not (info.is_dir() and len(list(info.glob("*.json"))) >= 1):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    time.sleep(1.0)             # into the next trial
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.read_text() for p in info.glob("*.json")}
    assert 1 <= len(finished) < 3
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(out)
    assert len(trials) == 3 and all(t["status"] in ("COMPLETED", "PRUNED") for t in trials)
    for name, text in finished.items():     # finished trials were not re-run
        assert (info / name).read_text() == text


@pytest.mark.slow
def test_distributed_chief_and_two_workers_one_killed(tmp_path):
    out = tmp_path / "dist"
    argv = [*TUNE[:7], "4", *TUNE[8:], "--out", str(out)]
    killed = {}

    def kill_later(procs):
        def target():
            time.sleep(12)
            procs["tuner0"].send_signal(signal.SIGKILL)
            killed["at"] = time.time()
        threading.Thread(target=target, daemon=True).start()

    result = distributed.run(argv, workers=2, out=str(out), timeout=500,
                             on_start=kill_later)
    assert "at" in killed
    assert result["restarts"]["tuner0"] >= 1
    trials = rows(out)
    assert len(trials) == 4
    assert all(t["status"] in ("COMPLETED", "PRUNED") for t in trials)


def test_distributed_refuses_bad_worker_count(tmp_path):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        distributed.run(["tune"], workers=0, out=str(tmp_path))


def test_yaml_space_without_pyyaml(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):
        if name == "yaml":
            raise ImportError("No module named 'yaml'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_yaml)
    space = tmp_path / "space.yaml"
    space.write_text("optimizer:\n  values: [adam]\n")
    with pytest.raises(ValueError, match=r"YAML space files need PyYAML \(pip install "
                                         r"pyyaml\); or write the space as JSON"):
        spaces.resolve_space("resnet20", space)


@pytest.mark.slow
def test_trials_per_process_runs_trials_in_fresh_processes(tmp_path):
    result = search("resnet20", "digits", tuner="random", max_trials=3, out=tmp_path,
                    trials_per_process=2,
                    space={"optimizer": {"values": ["adam", "sgd"]},
                           "learning_rate": {"values": [1e-3, 1e-2]},
                           "regularizer": None, "augment": None, "dropout": None,
                           "label_smoothing": None, "batch_size": {"value": 64},
                           "depth": None},
                    **TINY)
    trials = rows(tmp_path)
    assert len(trials) == 3
    assert all(t["status"] in ("COMPLETED", "PRUNED") for t in trials)  # median stopping
    pids = [json.loads(p.read_text())["pid"]
            for p in sorted((tmp_path / "trial_info").glob("*.json"))]
    # Two trials in a first child process, the third in a second one.
    assert pids[0] == pids[1] != pids[2] and os.getpid() not in pids
    assert result["best_trial"] in {t["trial_id"] for t in trials}


def test_median_stopping_never_prunes_a_finished_trial():
    # A trial at its last epoch, worse than the median of finished trials:
    # its score is final, so it is not PRUNED (it used to be with --epochs 1).
    from tuning.search import TrialRecorder

    recorder = TrialRecorder("unused", "val_accuracy", "max", min_trials=2)
    recorder.oracle, recorder.trial_id = object(), "t1"
    recorder._history_at = lambda epoch: [0.9, 0.8]        # finished peers
    recorder.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    recorder.on_train_begin()
    recorder.set_params({"epochs": 2})
    recorder.on_epoch_end(0, {"val_accuracy": 0.1, "loss": 1.0})
    assert recorder.pruned             # worse than the median, epochs remain
    recorder.on_train_begin()
    recorder.model.stop_training = False
    recorder.on_epoch_end(1, {"val_accuracy": 0.1, "loss": 1.0})
    assert not recorder.pruned and not recorder.model.stop_training


def test_median_stopping_records_an_oracle_failure():
    from tuning.search import TrialRecorder

    class BrokenOracle:
        def get_best_trials(self, n):
            raise RuntimeError("oracle unavailable")

    recorder = TrialRecorder("unused", "val_accuracy", "max", min_trials=2)
    recorder.oracle, recorder.trial_id = BrokenOracle(), "t1"
    recorder.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    recorder.set_params({"epochs": 3})
    recorder.on_train_begin()
    recorder.on_epoch_end(0, {"val_accuracy": 0.5, "loss": 1.0})
    assert recorder.prune_error == "RuntimeError: oracle unavailable"


def test_unreloadable_best_model_is_logged_and_recorded(tmp_path, monkeypatch, caplog):
    def broken(self, num_models=1):
        raise OSError("checkpoint file is damaged")
    monkeypatch.setattr(keras_tuner.Tuner, "get_best_models", broken)
    result = search("resnet20", "digits", max_trials=1, out=tmp_path,
                    space={"optimizer": {"value": "adam"},
                           "learning_rate": {"value": 1e-3}}, **TINY)
    assert result["best_model_error"] == "OSError: checkpoint file is damaged"
    recorded = json.loads((tmp_path / "best_model_error.json").read_text())
    assert recorded["trial_id"] == result["best_trial"]
    assert "checkpoint file is damaged" in recorded["error"]
    assert not (tmp_path / "best_model.keras").exists()
    assert "best_model.keras was not written" in caplog.text
