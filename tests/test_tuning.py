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
import pytest

import tuning
import zoo
from helpers import shallow_resnet, subprocess_env
from tuning import distributed
from tuning.search import search


TINY = dict(limit=128, epochs=1, folds=1, final_epochs=1, compare_default=False)
# The trials alone, for tests of the trials (the final retraining is the
# same for every tuner and process layout: tested where it is asserted).
TRIALS = dict(limit=128, epochs=1, folds=1, retrain=False)


def rows(out):
    with open(out / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("kind", tuning.TUNERS)
def test_each_tuner_runs_two_trials_and_exports(kind, tmp_path, monkeypatch):
    # The random search also exports a Pareto front (val_accuracy vs params,
    # two depths), so one search covers both; it alone also retrains the
    # best trial (best_model.keras), the same final run for every tuner.
    pareto = kind == "random"
    budget = dict(confirm=False, **TINY) if pareto else TRIALS
    # The Pareto front's depth knob is ResNet-20's (20 or 32 layers).
    model = "resnet20" if pareto else shallow_resnet(monkeypatch)
    result = search(model, "digits", tuner=kind, max_trials=2, out=tmp_path,
                    objective="val_accuracy,params" if pareto else "val_accuracy",
                    space={"optimizer": {"values": ["adam", "sgd"]},
                           "learning_rate": {"values": [1e-3, 1e-2]},
                           "regularizer": None, "augment": None, "dropout": None,
                           "label_smoothing": None, "schedule": None,
                           "batch_size": {"value": 64},
                           "depth": {"values": [20, 32]} if pareto else None},
                    **budget)   # confirm=False: the best trial as scored (test_confirm)
    trials = rows(tmp_path)
    assert len(trials) == 2 and all(t["status"] == "COMPLETED" for t in trials)
    assert {"trial_id", "status", "optimizer", "learning_rate", "score", "epochs_run",
            "wall_time_s", "params", "rss_mb"} <= set(trials[0])
    best = json.loads((tmp_path / "best_hyperparameters.json").read_text())
    best_row = max(trials, key=lambda r: float(r["score"]))
    # The best-scored trial, unless it won by less than its standard error:
    # then the one-standard-error rule keeps the first trial, and says so.
    if best["note"] and "one-standard-error rule" in best["note"]:
        best_row = trials[0]
    assert best["trial_id"] == best_row["trial_id"] == result["best_trial"]
    assert best["values"]["optimizer"] == best_row["optimizer"]
    assert (tmp_path / "objective_by_trial.png").is_file()
    assert (tmp_path / "best_model.keras").exists() == pareto
    if pareto:
        model = keras.models.load_model(tmp_path / "best_model.keras", safe_mode=True)
        assert model.output_shape == (None, 10)
        with open(tmp_path / "pareto.csv") as f:
            front = list(csv.DictReader(f))
        assert [r["trial_id"] for r in front] == result["pareto"]
        for r in trials:        # nothing outside the front dominates a front member
            for f in front:
                assert not (float(r["score"]) > float(f["score"])
                            and int(r["params"]) < int(f["params"]))
        assert (tmp_path / "pareto.png").is_file()


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
    (dict(folds=1, finalists=2), "finalists races the trials over the folds"),
    (dict(finalists=-1), "finalists must be an integer >= 0"),
    (dict(retrain=False, compare_default=True), "compare_default=True set the final"),
    (dict(retrain=False, confirm=False), r"confirm=False \(--no-confirm\) set the final"),
    (dict(space="narrow"), "Space file 'narrow' does not exist"),
    (dict(space={"learning_rate": {"min": 1e-3, "max": 1e-2, "default": 0.5}}),
     "default 0.5 is not among its values or inside its range"),
]


@pytest.mark.parametrize("kwargs,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_fails_before_first_trial(kwargs, message, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=message):
        search("resnet20", "digits", out=tmp_path / "o", **kwargs)
    assert not (tmp_path / "o" / "search").exists()


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


# The trials only (--no-retrain): these tests kill and resume trials.
TUNE = ["tune", "resnet20", "--dataset", "digits", "--tuner", "random",
        "--max-trials", "3", "--epochs", "2", "--limit", "128", "--seed", "1",
        "--folds", "1", "--no-retrain"]


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
    # Every trial was scored, and the trials ran in the workers' processes.
    scores = [float(t["score"]) for t in trials]
    assert all(0.0 <= s <= 1.0 for s in scores), scores    # NaN fails here too
    pids = {json.loads(p.read_text())["pid"] for p in (out / "trial_info").glob("*.json")}
    assert len(pids) >= 2, pids


def test_distributed_refuses_bad_worker_count(tmp_path):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        distributed.run(["tune"], workers=0, out=str(tmp_path))


@pytest.mark.slow
def test_trials_per_process_runs_trials_in_fresh_processes(tmp_path):
    result = search("resnet20", "digits", tuner="random", max_trials=3, out=tmp_path,
                    trials_per_process=2,
                    space={"optimizer": {"values": ["adam", "sgd"]},
                           "learning_rate": {"values": [1e-3, 1e-2]},
                           "regularizer": None, "augment": None, "dropout": None,
                           "label_smoothing": None, "batch_size": {"value": 64},
                           "depth": None},
                    **TRIALS)
    trials = rows(tmp_path)
    assert len(trials) == 3
    assert all(t["status"] in ("COMPLETED", "PRUNED") for t in trials)  # median stopping
    pids = [json.loads(p.read_text())["pid"]
            for p in sorted((tmp_path / "trial_info").glob("*.json"))]
    # Two trials in a first child process, the third in a second one.
    assert pids[0] == pids[1] != pids[2] and os.getpid() not in pids
    assert result["best_trial"] in {t["trial_id"] for t in trials}


@pytest.mark.slow
def test_search_scores_by_kfold_and_retrains_the_best(tmp_path, monkeypatch):
    # digits has 1,437 labelled images: below the k-fold threshold.
    model = shallow_resnet(monkeypatch)
    result = search(model, "digits", max_trials=2, out=tmp_path, limit=96,
                    trial_steps=4, final_epochs=1, prune=False, compare_default=True,
                    finalists=0,    # every trial runs every fold (racing: test below)
                    space={"augment": None, "label_smoothing": None,
                           "optimizer": {"value": "adam"}})
    trials = rows(tmp_path)
    assert [t["status"] for t in trials] == ["COMPLETED", "COMPLETED"]
    for t in trials:
        info = json.loads((tmp_path / "trial_info" / f"{t['trial_id']}.json").read_text())
        assert info["folds"] == 3 and len(info["fold_scores"]) == 3
        assert math.isclose(float(t["score"]), sum(info["fold_scores"]) / 3)
        # Each fold's images recorded (the selection rule reads them); no racing.
        assert len(info["fold_scored"]) == 3 and sum(info["fold_scored"]) == 1437
        assert info["raced"] is False
        # Every labelled image scored each trial once.
        assert int(t["scored"]) == 1437
        p = float(t["score"])
        assert math.isclose(float(t["score_se"]), math.sqrt(p * (1 - p) / 1437))
    # The first trial is zoo train's configuration.
    assert math.isclose(float(trials[0]["learning_rate"]), 3e-3)      # zoo train's
    # The best configuration was trained again on train + validation and
    # tested; best_model.keras is that model.
    final = json.loads((tmp_path / "final.json").read_text())
    config = final["best"]["config"]
    assert config["validation_split"] == 0.0
    # The space left augmentation out: the final run adds the recipe's augmentation
    # (and the final step floor, here overridden by final_epochs).
    assert config["augment"] == "light_erasing" and config["epochs"] == 1
    assert config["min_steps"] == tuning.final.FINAL_MIN_STEPS
    assert math.isclose(config["lr"], float(result["best_hyperparameters"]["learning_rate"]))
    acc = final["best"]["test_accuracy"]
    assert result["test_accuracy"] == acc and 0.0 <= acc <= 1.0 and not math.isnan(acc)
    model = keras.models.load_model(tmp_path / "best_model.keras", safe_mode=True)
    # The 8×8 digits were trained at the recipe's image-size floor, 16×16.
    assert tuple(model.input_shape[1:]) == (16, 16, 1)
    data = zoo.data.load("digits", limit=96, validation_split=0.0, image_size=16)
    assert math.isclose(model.evaluate(data.test, verbose=0)[1], acc, abs_tol=1e-6)
    # zoo train's defaults: the split is the recipe's (None), as `zoo train` sets it.
    assert final["default"]["config"]["validation_split"] is None
    report = (tmp_path / "report.md").read_text()
    assert f"{acc:.4f}" in report and "3-fold cross-validation" in report
    assert f"{final['default']['test_accuracy']:.4f}" in report
    assert "test accuracy" in tuning.report(tmp_path)
    # Each phase's cost: 2 trials × 3 folds × 4 steps, then the two runs.
    assert "| trials | 2 trials, 6 fold runs | 24 |" in report
    for name in ("best", "default"):
        run = final[name]
        phase = "final retraining" if name == "best" else "zoo train defaults"
        assert f"| {phase} | 1 | {run['optimizer_steps']} | " \
               f"{run['wall_time_s']:.0f} |" in report


@pytest.mark.slow
def test_a_raced_out_trial_skips_its_folds_and_cannot_be_best(tmp_path, monkeypatch):
    # Grid order: a rate that trains, then one that cannot (1e-7): with one
    # finalist the second trial stops after its first fold.
    model = shallow_resnet(monkeypatch)
    result = search(model, "digits", tuner="grid", max_trials=2, out=tmp_path,
                    limit=96, trial_steps=30, folds=3, finalists=1, retrain=False,
                    prune=False,
                    space={"learning_rate": {"values": [1e-2, 1e-7]},
                           "optimizer": {"value": "adam"}, "augment": None,
                           "label_smoothing": None, "weight_decay": None})
    trials = rows(tmp_path)
    assert [t["status"] for t in trials] == ["COMPLETED", "PRUNED"]
    assert [int(t["folds_run"]) for t in trials] == [3, 1]
    assert float(trials[1]["learning_rate"]) == 1e-7
    assert result["best_trial"] == trials[0]["trial_id"]
    assert "best first-fold scores" in (tmp_path / "report.md").read_text()
    info = json.loads((tmp_path / "trial_info" / f"{trials[0]['trial_id']}.json").read_text())
    assert info["raced"] is True and len(info["fold_scored"]) == 3


@pytest.mark.slow
def test_no_trial_is_pruned_after_its_last_epoch(tmp_path, monkeypatch):
    # Median stopping from the first epoch on (grace 1) with a learning rate
    # that cannot train: some trials are pruned, none after its last epoch.
    model = shallow_resnet(monkeypatch)
    result = search(model, "digits", max_trials=3, out=tmp_path, limit=64,
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


@pytest.mark.slow
def test_the_budget_ends_a_search_and_the_report_says_so(tmp_path, monkeypatch):
    # A record left by an earlier search in the folder: overwrite forgets it
    # (counted, it would end the search after one trial).
    stale = tmp_path / "trial_info" / "99.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps({"trial_id": "99", "wall_time_s": 1e6,
                                 "fold_seconds": [9.0], "epoch_ends": [5.0, 9.0]}))
    # A budget of a twentieth of a training run: the search stops after the
    # two trials it always runs, although max_trials allows four.
    model = shallow_resnet(monkeypatch)
    search(model, "digits", max_trials=4, budget=0.05, out=tmp_path, limit=96,
           trial_steps=4, retrain=False, prune=False, finalists=0, overwrite=True,
           space={"augment": None, "optimizer": {"value": "adam"}})
    assert not stale.exists()
    trials = rows(tmp_path)
    assert len(trials) == tuning.cost.MIN_TRIALS == 2
    facts = json.loads((tmp_path / "budget.json").read_text())
    assert facts["stopped"] is True and facts["budget_runs"] == 0.05
    # The run it counts in: zoo train's budget on all 1,437 labelled images
    # at batch 32 and the recipe's 1,500-step floor, 17 epochs of two
    # 45-step passes.
    assert facts["run_estimate"]["steps"] == 17 * 2 * 45
    for t in trials:
        info = json.loads((tmp_path / "trial_info" / f"{t['trial_id']}.json").read_text())
        # Every fold timed; the first fold's epochs clocked for the estimate.
        assert len(info["fold_seconds"]) == 3 and len(info["epoch_ends"]) == info["epochs_run"]
    assert "it stopped the search" in (tmp_path / "report.md").read_text()
    assert "it stopped the search" in tuning.report(tmp_path)     # zoo tune --report
    config = json.loads((tmp_path / "search_config.json").read_text())
    assert config["budget_runs"] == 0.05


def test_seed_0_proposes_the_same_trials_in_every_search(tmp_path):
    # keras-tuner reads seed 0 as "draw a seed"; the default search's seed is
    # 0, and its proposals once changed from one run of the command to the next.
    import importlib
    import keras_tuner
    from tuning.hypermodel import ZooHyperModel
    search_module = importlib.import_module("tuning.search")
    proposals = []
    for i in range(2):
        model = ZooHyperModel("resnet20", 10, (8, 8, 1), dataset="digits")
        tuner = search_module._tuner("random", model, keras_tuner.Objective(
            "val_accuracy", direction="max"), 4, 1, tmp_path / str(i), 0, True)
        hp = keras_tuner.HyperParameters()
        model.build(hp)
        tuner.oracle.update_space(hp)
        first = tuner.oracle.create_trial("a")      # zoo train's configuration
        proposals.append(tuner.oracle.create_trial("b").hyperparameters.values)
        assert proposals[-1] != first.hyperparameters.values
    assert "learning_rate" in proposals[0] and proposals[0] == proposals[1]
