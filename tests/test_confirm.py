"""A switch from `zoo train`'s configuration confirmed at the final run's
length (tuning.confirm, issue #27)."""

import json
import math

import pytest

from helpers import shallow_resnet
from tuning import confirm
from tuning.search import search

# Grid order: the first trial (every knob at its default) at a rate that
# cannot train, the second at one that can: the trials switch to the second.
SWITCH = dict(tuner="grid", max_trials=2, limit=96, trial_steps=30, final_epochs=1,
              prune=False, finalists=0, compare_default=False,
              space={"learning_rate": {"values": [1e-7, 1e-2]},
                     "optimizer": {"value": "adam"}, "augment": None,
                     "label_smoothing": None, "weight_decay": None})


def _best(out):
    return json.loads((out / "best_hyperparameters.json").read_text())


@pytest.mark.slow
def test_a_switch_is_confirmed_at_the_final_runs_length(tmp_path, monkeypatch):
    model = shallow_resnet(monkeypatch)
    result = search(model, "digits", out=tmp_path, **SWITCH)
    record = json.loads((tmp_path / confirm.FILE).read_text())
    assert record["pair"] == ["0", "1"] and record["fold"] == [1, 3]
    runs = record["runs"]
    # Both trained as the final run trains (final_epochs=1: one pass) on the
    # second fold's training images: digits' 1,437 labelled images less the
    # fold's validation images, at most `limit` of them, in batches of 32.
    for run in runs.values():
        assert run["steps"] == math.ceil(min(96, 1437 - run["scored"]) / 32) == 3
        assert run["score"] is not None and not math.isnan(run["score"])
    assert runs["1"]["score"] > runs["0"]["score"]
    assert record["kept"] == "1" and result["best_trial"] == "1"
    best = _best(tmp_path)
    assert best["trial_id"] == "1" and "trial 1 kept" in best["note"]
    final = json.loads((tmp_path / "final.json").read_text())
    assert math.isclose(final["best"]["config"]["lr"], 1e-2)
    report = (tmp_path / "report.md").read_text()
    steps = sum(r["steps"] for r in runs.values())
    assert f"| confirmation of the switch | 2 | {steps} |" in report
    assert "Confirmed at the final run's length" in report


@pytest.mark.slow
def test_a_switch_the_longer_runs_refuse_keeps_zoo_trains_configuration(
        tmp_path, monkeypatch):
    # The longer runs score the first trial higher: the search goes on with
    # it, and the final retraining trains it.
    def scripted(search_model, hp, fold, final, objective):
        first = hp.values["learning_rate"] == 1e-7
        return {"score": 0.9 if first else 0.5, "steps": 7, "scored": 479,
                "seconds": 0.1}
    monkeypatch.setattr(confirm, "_train", scripted)
    model = shallow_resnet(monkeypatch)
    result = search(model, "digits", out=tmp_path, **SWITCH)
    assert result["best_trial"] == "0"
    best = _best(tmp_path)
    assert best["trial_id"] == "0" and best["values"]["learning_rate"] == 1e-7
    assert "trial 0 (every knob at its default) kept" in best["note"]
    final = json.loads((tmp_path / "final.json").read_text())
    assert math.isclose(final["best"]["config"]["lr"], 1e-7)
    # Run again, the recorded runs are reused: none trains.
    monkeypatch.setattr(confirm, "_train", lambda *a: pytest.fail("trained again"))
    assert search(model, "digits", out=tmp_path, **SWITCH)["best_trial"] == "0"
    # A final run of another length: both runs are made again, for it.
    calls = []
    monkeypatch.setattr(confirm, "_train", lambda *a: calls.append(a[3]) or scripted(*a))
    search(model, "digits", out=tmp_path, **{**SWITCH, "final_epochs": 2})
    assert [c["epochs"] for c in calls] == [2, 2]
    # Again without confirmation: the best trial as scored, and the final
    # run trains it (the finished final run of trial 0 is not handed back).
    result = search(model, "digits", out=tmp_path, confirm=False, **SWITCH)
    assert result["best_trial"] == "1" and not (tmp_path / confirm.FILE).exists()
    final = json.loads((tmp_path / "final.json").read_text())     # the run's own
    assert math.isclose(final["best"]["config"]["lr"], 1e-2)        # metrics.json


@pytest.mark.parametrize("b, a, direction, better", [
    (0.8, 0.7, "max", True), (0.7, 0.7, "max", False), (0.7, 0.8, "max", False),
    (0.3, 0.4, "min", True), (None, 0.7, "max", False), (0.5, None, "max", True),
    (None, None, "max", False)])
def test_a_tie_or_a_diverged_challenger_keeps_the_first_trial(b, a, direction, better):
    assert confirm._better(b, a, direction) is better


def test_confirm_must_be_a_bool(tmp_path):
    with pytest.raises(Exception, match="confirm must be True or False"):
        search("resnet20", "digits", out=tmp_path, confirm="yes")
