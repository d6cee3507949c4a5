"""Trial budgets and validation schemes (tuning.plan) and the final recipe (tuning.final)."""

import pytest

import tuning


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


def test_finalists_default_and_checks():
    from tuning import plan
    # Before the folds are known (check_arguments): the value alone.
    assert plan.check_finalists(None, None) is None
    assert plan.check_finalists(2, None) == 2 and plan.check_finalists(0, None) is None
    # Under k-fold the default races; with a holdout there is nothing to race.
    assert plan.check_finalists(None, 3) == plan.FINALISTS >= 1
    assert plan.check_finalists(None, 1) is None and plan.check_finalists(0, 3) is None
    assert plan.plan_trials(500).finalists == plan.FINALISTS
    assert plan.plan_trials(20000).finalists is None          # a holdout
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="finalists must be an integer >= 0"):
            plan.check_finalists(bad, 3)
