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


def test_the_defaults_trial_is_kept_unless_beaten_by_more_than_a_standard_error():
    # The one-standard-error rule: trial "0" (every knob at its default) is
    # kept while the best score is within the best's standard error of it.
    from types import SimpleNamespace

    import keras_tuner
    from tuning.exports import choose_best

    hp = keras_tuner.HyperParameters()
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=3e-3)
    hp.Choice("optimizer", ["adam", "adamw"], default="adam")
    with hp.conditional_scope("optimizer", ["adamw"]):
        hp.Float("weight_decay", 1e-5, 1e-1, sampling="log", default=1e-4)

    def trial(**values):
        return SimpleNamespace(hyperparameters=SimpleNamespace(values=values))

    oracle = SimpleNamespace(get_space=lambda: hp, trials={
        "0": trial(learning_rate=3e-3, optimizer="adam"),
        "1": trial(learning_rate=7e-3, optimizer="adamw", weight_decay=1e-3),
        "2": trial(learning_rate=1e-3, optimizer="adam")})

    def rows(score1, se1):
        return [{"trial_id": "0", "status": "COMPLETED", "score": 0.706, "score_se": 0.020},
                {"trial_id": "1", "status": "COMPLETED", "score": score1, "score_se": se1},
                {"trial_id": "2", "status": "COMPLETED", "score": 0.60, "score_se": 0.02}]

    chosen, note = choose_best(oracle, rows(0.720, 0.020), "max")
    assert chosen is oracle.trials["0"]
    assert "trial 1 scored 0.7200, within its standard error (0.0200) of 0.7060" in note
    chosen, note = choose_best(oracle, rows(0.740, 0.020), "max")     # beaten by 0.034
    assert chosen is oracle.trials["1"] and note is None
    chosen, note = choose_best(oracle, rows(0.720, None), "max")      # no error known
    assert chosen is oracle.trials["1"] and note is None
    # Without the defaults trial among the finished ones, the best score wins.
    oracle.trials["0"] = trial(learning_rate=2e-3, optimizer="adam")
    assert choose_best(oracle, rows(0.720, 0.020), "max") == (oracle.trials["1"], None)


def test_the_rule_leaves_out_the_fold_that_raced_the_trials():
    # Under racing a challenger reaches its later folds only with a high
    # first-fold score: the rule compares it with the defaults trial on the
    # folds after the first. Here the challenger's mean (0.76) beats 0.70
    # by three standard errors only through its first fold.
    from types import SimpleNamespace

    import keras_tuner
    from tuning.exports import choose_best

    hp = keras_tuner.HyperParameters()
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=3e-3)

    def trial(lr):
        return SimpleNamespace(hyperparameters=SimpleNamespace(
            values={"learning_rate": lr}))

    oracle = SimpleNamespace(get_space=lambda: hp,
                             trials={"0": trial(3e-3), "1": trial(1e-3)})

    def rows(challenger, raced=True):
        def row(trial_id, folds):
            return {"trial_id": trial_id, "status": "COMPLETED",
                    "score": sum(folds) / 3, "score_se": 0.019, "fold_scores": folds,
                    "fold_scored": [167, 167, 166], "raced": raced}
        return [row("0", [0.70, 0.70, 0.70]), row("1", challenger)]

    chosen, note = choose_best(oracle, rows([0.86, 0.71, 0.71]), "max")
    assert chosen is oracle.trials["0"]
    assert "trial 1 scored 0.7100 on the folds after the first" in note
    assert "333 images" in note
    # Without racing every fold is an unbiased score: the challenger wins.
    assert choose_best(oracle, rows([0.86, 0.71, 0.71], raced=False), "max") == \
        (oracle.trials["1"], None)
    # Best by its mean only through the first fold, worse on the later ones:
    # the defaults trial is kept.
    chosen, note = choose_best(oracle, rows([0.95, 0.60, 0.60]), "max")
    assert chosen is oracle.trials["0"] and "scored 0.6000 on the folds" in note
    # A challenger that wins on the later folds too is chosen.
    assert choose_best(oracle, rows([0.86, 0.78, 0.78]), "max") == \
        (oracle.trials["1"], None)


def test_the_report_says_when_the_rule_kept_the_first_trial(tmp_path):
    import json

    from tuning.exports import report
    (tmp_path / "trials.csv").write_text("trial_id,status,score\n0,COMPLETED,0.7\n"
                                         "1,COMPLETED,0.71\n")
    note = "trial 0 (every knob at its default) kept: trial 1 scored 0.7100"
    (tmp_path / "best_hyperparameters.json").write_text(json.dumps(
        {"trial_id": "0", "score": 0.7, "objective": "val_accuracy",
         "values": {"learning_rate": 0.003}, "note": note}))
    assert note in report(tmp_path)
