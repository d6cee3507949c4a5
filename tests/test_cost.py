"""A search's cost in training runs (tuning.cost)."""

import json

import pytest

from tuning import cost
from zoo.errors import InputError


def record(folder, trial_id, wall, folds, ends=None):
    path = folder / "trial_info" / f"{trial_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"trial_id": trial_id, "wall_time_s": wall,
                                "fold_seconds": folds, "epoch_ends": ends or []}))


def test_a_run_is_estimated_from_the_first_fold():
    # 4 epochs of 10 steps: the last three took 1 s each (0.1 s a step); the
    # fold took 9 s, so 9 - 40 × 0.1 = 5 s were building and tracing.
    run = cost.estimate({"fold_seconds": [9.0], "epoch_ends": [6.0, 7.0, 8.0, 9.0]},
                        steps_per_epoch=10, run_steps=1000)
    assert run.step_s == pytest.approx(0.1) and run.fixed_s == pytest.approx(5.0)
    assert run.seconds == pytest.approx(105.0)
    # One epoch gives no rate.
    assert cost.estimate({"fold_seconds": [9.0], "epoch_ends": [9.0]}, 10, 1000) is None


def test_the_budget_stops_the_trial_that_would_exceed_it(tmp_path):
    # One run: 5 s + 100 steps × 0.1 s = 15 s; a budget of 2 runs is 30 s.
    budget = cost.Budget(runs=2.0, run_steps=100, steps_per_epoch=10)
    record(tmp_path, "00", 12.0, [9.0, 1.5, 1.5], [6.0, 7.0, 8.0, 9.0])
    budget.check(tmp_path)                       # one trial: never stops
    assert not (tmp_path / "budget.json").exists()
    record(tmp_path, "01", 7.0, [7.0])
    budget.check(tmp_path)                       # 19 s + 8 s expected <= 30 s
    facts = json.loads((tmp_path / "budget.json").read_text())
    assert facts["stopped"] is False and facts["allowed_s"] == 30.0
    assert facts["spent_s"] == 19.0 and facts["next_trial_s"] == 8.0
    record(tmp_path, "02", 4.0, [4.0])
    # 23 s spent + 6.7 s expected > 1.9 runs (28.5 s)
    with pytest.raises(cost.SearchBudgetReached):
        cost.Budget(runs=1.9, run_steps=100, steps_per_epoch=10).check(tmp_path)
    facts = json.loads((tmp_path / "budget.json").read_text())
    assert facts["stopped"] is True and facts["trials"] == 3
    line = cost.describe(tmp_path)
    assert "1.9 training runs" in line and "it stopped the search" in line
    # At max_trials keras-tuner ends the search: the budget did not.
    cost.Budget(runs=1.9, run_steps=100, steps_per_epoch=10, max_trials=3).check(tmp_path)
    facts = json.loads((tmp_path / "budget.json").read_text())
    assert facts["stopped"] is False and facts["max_trials_reached"] is True
    assert "max_trials ended the search" in cost.describe(tmp_path)
    (tmp_path / "budget.json").write_text("{")
    with pytest.raises(InputError, match="budget.json is damaged"):
        cost.describe(tmp_path)


def test_a_damaged_trial_record_is_refused(tmp_path):
    record(tmp_path, "00", 12.0, [9.0], [6.0, 9.0])
    (tmp_path / "trial_info" / "01.json").write_text("{not json")
    with pytest.raises(InputError, match="01.json is damaged") as err:
        cost.Budget(2.0, 100, 10).check(tmp_path)
    assert "delete it to re-run that trial" in str(err.value)


def test_the_default_budget_applies_to_default_searches_only():
    assert cost.resolve_budget(None, None, "random") == cost.TRIAL_BUDGET
    # Trials asked for are run: no budget unless one is given too.
    assert cost.resolve_budget(None, 12, "random") is None
    assert cost.resolve_budget(3, 12, "random") == 3.0
    assert cost.resolve_budget(0, None, "random") is None
    assert cost.resolve_budget(None, None, "hyperband") is None
    assert cost.resolve_budget(None, None, "random", distributed=True) is None
    for bad in (-1, float("nan"), "2", True):
        with pytest.raises(InputError, match="budget is in training runs"):
            cost.resolve_budget(bad, None, "random")
    with pytest.raises(InputError, match="Hyperband"):
        cost.resolve_budget(2, None, "hyperband")
    with pytest.raises(InputError, match="with workers"):
        cost.resolve_budget(2, None, "random", distributed=True)
