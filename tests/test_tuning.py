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
from helpers import subprocess_env
from tuning import distributed, spaces
from tuning.search import TrialRecorder, ZooHyperModel, pareto_front, search

TINY = dict(limit=128, epochs=1, folds=1, final_epochs=1, compare_default=False)


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
    space = spaces.resolve_space("resnet20", {"optimizer": {"value": "adam"}}, base="wide")
    hp = keras_tuner.HyperParameters()
    spaces.optimizer(hp, space)
    spaces.regularizer(hp, space)
    assert {"beta_1", "beta_2", "epsilon"} <= set(hp.values)
    assert "momentum" not in hp.values and "rho" not in hp.values
    assert "weight_decay" not in hp.values
    space = spaces.resolve_space("resnet20", {"optimizer": {"value": "nesterov"},
                                              "regularizer": {"value": "l2"}}, base="wide")
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
    (dict(trial_steps=0), "trial_steps must be an integer >= 1; got 0"),
    (dict(epochs=2, trial_steps=100), "as epochs or as trial_steps, not both"),
    (dict(folds=0), "folds must be an integer >= 1; got 0"),
    (dict(folds=11), "folds must be at most 10"),
    (dict(folds=3, tuner="hyperband"), "Hyperband continues trials"),
    (dict(space="narrow"), "Space file 'narrow' does not exist"),
    (dict(space={"learning_rate": {"min": 1e-3, "max": 1e-2, "default": 0.5}}),
     "default 0.5 is not among its values or inside its range"),
]


@pytest.mark.parametrize("kwargs,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_fails_before_first_trial(kwargs, message, tmp_path, monkeypatch):
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
        "--max-trials", "3", "--epochs", "2", "--limit", "128", "--seed", "1",
        "--folds", "1", "--final-epochs", "1", "--no-compare-default"]


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


def test_search_scores_by_kfold_and_retrains_the_best(tmp_path):
    # digits has 1,437 labelled images: below the k-fold threshold.
    result = search("resnet20", "digits", max_trials=2, out=tmp_path, limit=96,
                    trial_steps=4, final_epochs=1, prune=False,
                    space={"augment": None, "label_smoothing": None,
                           "optimizer": {"value": "adam"}})
    trials = rows(tmp_path)
    assert [t["status"] for t in trials] == ["COMPLETED", "COMPLETED"]
    for t in trials:
        info = json.loads((tmp_path / "trial_info" / f"{t['trial_id']}.json").read_text())
        assert info["folds"] == 3 and len(info["fold_scores"]) == 3
        assert math.isclose(float(t["score"]), sum(info["fold_scores"]) / 3)
        # Every labelled image scored each trial once.
        assert int(t["scored"]) == 1437
        p = float(t["score"])
        assert math.isclose(float(t["score_se"]), math.sqrt(p * (1 - p) / 1437))
    # The first trial is zoo train's configuration.
    assert math.isclose(float(trials[0]["learning_rate"]), 1e-3)
    # The best configuration was trained again on train + validation and
    # tested; best_model.keras is that model.
    final = json.loads((tmp_path / "final.json").read_text())
    config = final["best"]["config"]
    assert config["validation_split"] == 0.0
    # The space left augmentation out: the final run adds light augmentation
    # (and the final step floor, here overridden by final_epochs).
    assert config["augment"] == "light" and config["epochs"] == 1
    assert config["min_steps"] == tuning.final.FINAL_MIN_STEPS
    assert math.isclose(config["lr"], float(result["best_hyperparameters"]["learning_rate"]))
    acc = final["best"]["test_accuracy"]
    assert result["test_accuracy"] == acc and 0.0 <= acc <= 1.0 and not math.isnan(acc)
    model = keras.models.load_model(tmp_path / "best_model.keras", safe_mode=True)
    data = zoo.data.load("digits", limit=96, validation_split=0.0)
    assert math.isclose(model.evaluate(data.test, verbose=0)[1], acc, abs_tol=1e-6)
    assert final["default"]["config"]["validation_split"] == 0.1
    report = (tmp_path / "report.md").read_text()
    assert f"{acc:.4f}" in report and "3-fold cross-validation" in report
    assert f"{final['default']['test_accuracy']:.4f}" in report
    assert "test accuracy" in tuning.report(tmp_path)


def test_final_recipe_augmentation_and_budget():
    from tuning.final import FINAL_AUGMENT, FINAL_MIN_STEPS, final_recipe
    focused = tuning.spaces.resolve_space("resnet20", "focused")
    wide = tuning.spaces.resolve_space("resnet20", "wide")
    # Focused trials do not search augmentation: the final run adds it.
    assert final_recipe({"learning_rate": 3e-3}, focused) == {
        "min_steps": FINAL_MIN_STEPS, "augment": FINAL_AUGMENT}
    # The final run is a run of the one recipe (zoo.recipe), not a recipe
    # of its own (issue #27).
    from zoo.recipe import RECIPE
    assert (FINAL_AUGMENT, FINAL_MIN_STEPS) == (RECIPE.augment, RECIPE.min_steps)
    assert FINAL_AUGMENT != "none"
    # A space that searched (or fixed) augmentation keeps the trial's choice.
    assert final_recipe({"augment": "none"}, wide)["augment"] == "none"
    fixed = {**focused, "augment": {"value": "standard"}}
    assert final_recipe({"augment": "standard"}, fixed)["augment"] == "standard"
    # Explicit arguments win.
    assert final_recipe({"augment": "none"}, wide, min_steps=10, augment="strong") == {
        "min_steps": 10, "augment": "strong"}


def test_holdout_above_the_threshold_has_a_minimum_size():
    from tuning import plan
    big = plan.plan_trials(20000)
    assert big.folds == 1 and big.validation_split == 0.1 and big.scored_per_trial == 2000
    # 1,000 labelled images with folds=1: half a thousand validate, not 100.
    small = plan.plan_trials(1000, folds=1)
    assert small.scored_per_trial == plan.MIN_VALIDATION
    assert plan.plan_trials(1437).folds == 3
    assert plan.plan_trials(1437, tuner="hyperband").folds == 1
    # The budget: at least 300 steps, the same for every trial; 3 passes on
    # larger data.
    assert plan.plan_trials(1437).total_steps >= plan.TRIAL_MIN_STEPS
    assert plan.plan_trials(54000).total_steps >= 3 * 48600 // 64


def test_no_trial_is_pruned_after_its_last_epoch(tmp_path):
    # Median stopping from the first epoch on (grace 1) with a learning rate
    # that cannot train: some trials are pruned, none after its last epoch.
    result = search("resnet20", "digits", max_trials=3, out=tmp_path, limit=64,
                    epochs=3, folds=1, retrain=False, min_trials=1,
                    space={"learning_rate": {"min": 1e-7, "max": 1e-2,
                                             "sampling": "log"},
                           "optimizer": {"value": "adam"}, "augment": None,
                           "label_smoothing": None})
    trials = rows(tmp_path)
    assert result["trials"] and not (tmp_path / "best_model.keras").exists()
    pruned = [t for t in trials if t["status"] == "PRUNED"]
    assert pruned, [t["status"] for t in trials]    # else the loop below is vacuous
    for t in pruned:
        assert int(t["epochs_run"]) < 3


def test_the_focused_space_declares_every_knob_with_train_defaults_first():
    hm = ZooHyperModel("resnet20", 10, (8, 8, 1))
    hp = keras_tuner.HyperParameters()
    hm.build(hp)
    # Every focused knob is known to keras-tuner (a knob read only in `fit`
    # was never searched), and its first value is zoo train's default.
    assert hp.values == {"optimizer": "adam", "learning_rate": 1e-3,
                         "label_smoothing": 0.0,
                         "batch_size": 32, "schedule": "warmup_cosine"}
    hp = keras_tuner.HyperParameters()
    hp.Fixed("optimizer", "adamw")
    hm.build(hp)
    assert math.isclose(hp.values["weight_decay"], 0.004)
