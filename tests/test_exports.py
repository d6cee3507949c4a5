"""What a search exports: the Pareto front and the best trial (tuning.exports)."""


from tuning.exports import best_of, pareto_front


def test_pareto_front_on_constructed_case():
    points = [(0.90, 100), (0.80, 50), (0.85, 200), (0.70, 40), (0.80, 60)]
    assert pareto_front(points, ["max", "min"]) == [0, 1, 3]


def test_the_best_trial_is_chosen_among_trials_that_ran_to_the_end():
    from types import SimpleNamespace

    oracle = SimpleNamespace(trials={"a": "trial a", "b": "trial b", "c": "trial c"},
                             get_best_trials=lambda n: ["keras-tuner's"])
    rows_ = [{"trial_id": "a", "status": "COMPLETED", "score": 0.8},
             {"trial_id": "b", "status": "PRUNED", "score": 0.9},
             {"trial_id": "c", "status": "COMPLETED", "score": 0.85}]
    assert best_of(oracle, rows_, "max") == "trial c"
    assert best_of(oracle, rows_, "min") == "trial a"
    rows_ = [{**r, "status": "PRUNED"} for r in rows_]
    assert best_of(oracle, rows_, "max") == "keras-tuner's"
