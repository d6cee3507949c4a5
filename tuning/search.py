"""Hyperparameter search over a zoo model with keras-tuner.

`search(...)` and `zoo tune` run a keras-tuner tuner (random, bayesian,
hyperband, grid) over `ZooHyperModel`, with median-stopping trial pruning,
resume (the same command on the same folder continues; a killed trial is
re-run), and exports: trials.csv, best_hyperparameters.json,
best_model.keras, plots, and pareto.csv for several objectives.

Its parts: `tuning.hypermodel`, `tuning.recorder` (median stopping,
racing), `tuning.processes`, `tuning.exports`, `tuning.plan` (budgets and
validation), `tuning.cost` (the search's budget in training runs),
`tuning.options` (arguments checked), `tuning.spaces` and `tuning.final`
(the final retraining).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import shutil
import statistics
import time
from pathlib import Path

import keras
import keras_tuner

import zoo
from . import confirm as confirm_lib
from . import cost
from . import final as final_lib
from . import plan as plan_lib
from . import spaces
from .exports import best_of, export, pareto_front, report  # noqa: F401
from .options import (TUNERS, check_tuner, final_options,  # noqa: F401
                      parse_objectives)
from .hypermodel import InitialState, ZooHyperModel
from .processes import (_CHILD, PROCESS_BUDGET_ENV,  # noqa: F401
                        ProcessBudgetReached, child_kwargs, keras_tuner_is_worker,
                        search_in_processes)
from .recorder import TrialRecorder, rss_mb  # noqa: F401
from zoo import data as data_lib
from zoo.budget import budget as run_budget
from zoo.recipe import RECIPE
from zoo.errors import InputError, check_positive_int, check_seed
from zoo.io import check_writable_dir, write_json
from zoo.train_config import check_floor


PROJECT = "search"
log = logging.getLogger("tuning.search")


def _with_recording(tuner_cls):
    class Recording(tuner_cls):
        trials_this_process = 0
        cost_budget = None          # a tuning.cost.Budget, or None

        def pre_create_trial(self):
            budget = int(os.environ.get(PROCESS_BUDGET_ENV) or 0)
            if budget and self.trials_this_process >= budget:
                raise ProcessBudgetReached()
            if self.cost_budget is not None:
                self.cost_budget.check(Path(self.project_dir).parent)
            super().pre_create_trial()

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.trials_this_process += 1

        def run_trial(self, trial, *args, **kwargs):
            recorder = next(cb for cb in kwargs.get("callbacks", [])
                            if isinstance(cb, TrialRecorder))
            recorder.begin_trial(trial.trial_id)
            if isinstance(self.oracle, keras_tuner.oracles.HyperbandOracle):
                # Hyperband continues trials from keras-tuner's checkpoints.
                result = super().run_trial(trial, *args, **kwargs)
                recorder.end_trial(self._last_model, folds=1)
                return result
            return _run_folds(self, trial, recorder, *args, **kwargs)

        # Private keras-tuner API, checked on keras-tuner 1.4.8
        # (tests/test_private_apis.py): Hyperband's own run_trial builds
        # the model here, and the recorder needs it.
        def _build_hypermodel(self, hp):
            self._last_model = super()._build_hypermodel(hp)
            return self._last_model
    Recording.__name__ = tuner_cls.__name__
    return Recording


def _run_folds(tuner, trial, recorder, *args, **kwargs):
    """One trial under the search's TrialPlan: trained on each fold (or the
    holdout), scored by the objective after its last epoch, averaged over
    the folds. A pruned trial stops after its first fold, and so does one
    whose first-fold score is not among the plan's finalists."""
    hypermodel, hp = tuner.hypermodel, trial.hyperparameters
    objective = tuner.oracle.objective.name
    plan = hypermodel.plan
    scores, counts, steps, seconds = [], [], 0, []
    model = start = None
    for fold in plan.fold_ids():
        recorder.begin_fold()
        if model is None:
            # What keras-tuner's (private) _try_build does before a build:
            # free the previous trial's model, so memory stays flat.
            keras.backend.clear_session()
            gc.collect()
            model = hypermodel.build(hp)
            hypermodel.prepare(hp, model, fold)
            start = InitialState(model)
        else:
            start.restore(model)
        history = hypermodel.fit(hp, model, *args, fold=fold, **kwargs)
        seconds.append(round(time.perf_counter() - recorder.fold_start, 2))
        recorder.first_fold = False
        steps += len(history.history.get("loss") or []) * plan.steps_per_epoch
        values = history.history.get(objective) or [None]
        if recorder.diverged or values[-1] is None:
            break
        scores.append(float(values[-1]))
        counts.append(hypermodel.trial_data(hp, fold).info.num_val)
        if recorder.pruned:
            break
        if len(scores) == 1 and plan.folds > 1 and plan.finalists \
                and not recorder.goes_on(scores[0], plan.finalists):
            recorder.pruned = True          # raced out: cannot be the best
            break
    score = statistics.fmean(scores) if scores else None
    recorder.end_trial(model, folds=plan.folds, folds_run=len(scores), steps_run=steps,
                       fold_scores=scores, fold_scored=counts, score=score,
                       scored=sum(counts), fold_seconds=seconds,
                       raced=bool(plan.folds > 1 and plan.finalists),
                       score_se=plan_lib.standard_error(scores, sum(counts), objective),
                       planned_epochs=plan.epochs)
    if score is None:
        raise keras_tuner.errors.FailedTrialError(
            "The loss became NaN (the trial diverged).")
    return {objective: score}


# keras-tuner's oracles read a seed of 0 as "none" and draw one at random
# (Oracle.__init__: `seed or random.randint(1, 10000)`), so the proposals of
# `seed=0`, the default, changed from one process to the next; 0 is passed
# on as this fixed seed instead (outside keras-tuner's random range).
ORACLE_SEED_FOR_0 = 10_007


def _tuner(kind, hypermodel, objective, max_trials, epochs, out, seed, overwrite):
    # A diverged trial is FAILED; it does not end the search.
    common = dict(objective=objective, directory=str(out), project_name=PROJECT,
                  seed=seed or ORACLE_SEED_FOR_0, overwrite=overwrite,
                  max_consecutive_failed_trials=max_trials + 1)
    if kind == "hyperband":
        return _with_recording(keras_tuner.Hyperband)(
            hypermodel, max_epochs=max(2, epochs), factor=3,
            hyperband_iterations=1, max_retries_per_trial=0, **common)
    cls = {"random": keras_tuner.RandomSearch,
           "bayesian": keras_tuner.BayesianOptimization,
           "grid": keras_tuner.GridSearch}[kind]
    tuner = _with_recording(cls)(hypermodel, max_trials=max_trials, **common)
    if kind != "grid":          # keras-tuner's grid search starts there itself
        _defaults_first(tuner.oracle)
    return tuner


def _defaults_first(oracle):
    """The first trial uses every knob's default (`zoo train`'s configuration
    where the space allows it, see tuning.spaces.first_value), as
    keras-tuner's grid search does; the random and Bayesian oracles would
    draw it at random."""
    populate = getattr(oracle, "populate_space", None)
    if populate is None:
        return      # a worker's gRPC client: the chief's oracle starts there

    def populate_space(trial_id):
        if oracle.start_order:
            return populate(trial_id)
        space = oracle.get_space()
        return {"status": "RUNNING",
                "values": {hp.name: hp.default for hp in space.space
                           if space.is_active(hp)}}
    oracle.populate_space = populate_space


def search(model_name, dataset="digits", *, tuner="random", max_trials=None,
           budget=None, epochs=None, trial_steps=None, folds=None, finalists=None,
           objective="val_accuracy", out, seed=0, space=None, data_dir=None,
           image_size=None, min_image_size=None, prune=True, min_trials=2,
           overwrite=False, verbose=0, limit=None, trials_per_process=None,
           retrain=True, final_epochs=None, final_steps=None, final_augment=None,
           compare_default=False, confirm=True):
    """Runs (or resumes) a search, retrains its best configuration and
    writes the exports into `out` (docs/tuning.md).

    Args:
        model_name, dataset: registry name; data source (zoo.data.load).
        tuner: "random", "bayesian", "hyperband" or "grid".
        max_trials, budget: trials to run (None: tuning.plan.MAX_TRIALS) and
            their wall time in training runs (tuning.cost; None: TRIAL_BUDGET
            without max_trials, else none; 0: none).
        trial_steps, epochs: a trial's steps, or passes (tuning.plan).
        folds, finalists: validation and racing over the folds (None:
            tuning.plan's defaults; finalists 0: every trial runs every fold).
        objective: "val_accuracy", or several for a Pareto front
            ("val_accuracy,params", "val_accuracy,latency").
        out: output folder; the same folder resumes.
        space: "focused" (default), "wide", a dict or a JSON/YAML file.
        image_size, min_image_size: as zoo train's (None: RECIPE's floor).
        prune, trials_per_process: median-stopping trial pruning; at most K
            trials per fresh process (memory).
        retrain, final_steps, final_epochs, final_augment: train the best
            configuration on train + validation (tuning.final), test it.
        compare_default: also train `zoo train`'s defaults (one more run).
        confirm: confirm a switch from the first trial at the final run's
            passes first (tuning.confirm; about one run, only then).

    Returns:
        dict with the best hyperparameters and score, the trial rows and
        the retrained model's test accuracy.
    """
    call = dict(locals())           # the arguments, for child processes
    setup = _setup(call)            # everything checked before the first trial
    out, plan = setup["out"], setup["plan"]
    if trials_per_process and not os.environ.get(PROCESS_BUDGET_ENV) \
            and not os.environ.get("KERASTUNER_TUNER_ID"):
        search_in_processes(trials_per_process, out, child_kwargs(call, out))
        call["overwrite"] = False   # the children ran it; this process only exports
    hypermodel = ZooHyperModel(model_name, setup["info"].num_classes,
                               setup["info"].image_shape, setup["space"], dataset=dataset,
                               data_kwargs=setup["data_kwargs"], plan=plan)
    result = _run_trials(call, setup, hypermodel)
    if "trials" not in result:
        return result           # a worker, or a process that reached its budget
    final = None
    if retrain and result.get("best_hyperparameters") is not None:
        final = _retrain(result["best_hyperparameters"], setup["space"],
                         setup["final"], model_name=model_name, dataset=dataset,
                         data_kwargs=setup["data_kwargs"], out=out, verbose=verbose)
        result.update(test_accuracy=final["best"]["test_accuracy"], final=final)
    final_lib.write_report(out, rows=result["trials"], hp_names=result["hp_names"],
                           objective=setup["objectives"][0][0], plan=plan,
                           final=final, best=_read_best(out),
                           confirmation=result.get("confirmation"))
    return result


def check_arguments(model_name, dataset="digits", *, tuner="random",
                    max_trials=None, budget=None, distributed=False, folds=None,
                    finalists=None,
                    objective="val_accuracy", space=None, data_dir=None,
                    trials_per_process=None, retrain=True, final_epochs=None,
                    final_steps=None, final_augment=None, compare_default=False,
                    seed=0, confirm=True, image_size=None, min_image_size=None,
                    **_) -> dict:
    """search()'s arguments that need no data, checked (the command line
    calls it before it starts a distributed search's processes): the
    final retraining's options, the objectives and the resolved space."""
    check_tuner(tuner)
    check_seed(seed)
    if min_image_size is not None:
        check_floor("min_image_size", min_image_size, image_size)
    if not isinstance(confirm, bool):
        raise InputError(f"confirm must be True or False; got {confirm!r}.")
    if max_trials is not None:
        check_positive_int(max_trials, "max_trials")
    runs = cost.resolve_budget(budget, max_trials, tuner, distributed or bool(
        os.environ.get("KERASTUNER_TUNER_ID")))
    plan_lib.check_finalists(finalists, 1 if folds == 1 or tuner == "hyperband" else None)
    final = final_options(retrain, final_epochs, final_steps, final_augment,
                          compare_default, confirm)
    if trials_per_process is not None:
        check_positive_int(trials_per_process, "trials_per_process")
    objectives = parse_objectives(objective)
    resolved = spaces.resolve_space(model_name, space)
    data_lib.check_source(dataset, data_dir)
    return {"final": final, "objectives": objectives, "space": resolved,
            "budget_runs": runs}


def _setup(call) -> dict:
    """search()'s arguments checked (before any trial), its space, plan and
    output folder; writes search_config.json."""
    c = call
    checked = check_arguments(**c)
    final, objectives, space = checked["final"], checked["objectives"], checked["space"]
    out = check_writable_dir(c["out"])
    if c["overwrite"] and not keras_tuner_is_worker():
        _forget_trials(out)
    # The search's data options, with the recipe's image-size floor.
    data_kwargs = {k: c.get(k) for k in final_lib.DATA_FIELDS}
    data_kwargs["min_image_size"] = c["min_image_size"] or RECIPE.min_image_size
    info, plan = _plan(c["model_name"], c["dataset"], data_kwargs, space,
                       folds=c["folds"], trial_steps=c["trial_steps"],
                       epochs=c["epochs"], tuner=c["tuner"], finalists=c["finalists"])
    budget = None
    if checked["budget_runs"]:
        budget = cost.Budget(checked["budget_runs"], math.prod(run_budget(
            plan.num_labelled, RECIPE.batch_size)), plan.steps_per_epoch,
            c["max_trials"] or plan_lib.MAX_TRIALS)
    write_json(out / "search_config.json", {
        **{k: c[k] for k in ("dataset", "tuner", "max_trials", "objective", "seed",
                             "prune")},
        "budget_runs": checked["budget_runs"],
        "model": c["model_name"], "space": space, "plan": plan.to_dict()})
    if c["verbose"]:
        print(plan.describe(), flush=True)
    return {"out": out, "plan": plan, "info": info, "space": space, "final": final,
            "objectives": objectives, "data_kwargs": data_kwargs, "budget": budget}


def _forget_trials(out):
    """overwrite=True: the previous search's trial records go with its
    keras-tuner folder (median stopping, racing and the budget read them)."""
    shutil.rmtree(out / "trial_info", ignore_errors=True)
    (out / "budget.json").unlink(missing_ok=True)
    (out / confirm_lib.FILE).unlink(missing_ok=True)


def _run_trials(call, setup, hypermodel) -> dict:
    """keras-tuner's search with the trial recorder; the exports, a switch
    confirmed (tuning.confirm), or {} in a worker, {"budget_reached": True}
    in a process that ran its share."""
    objectives, plan, out = setup["objectives"], setup["plan"], setup["out"]
    name, direction = objectives[0]
    t = _tuner(call["tuner"], hypermodel, keras_tuner.Objective(name, direction=direction),
               call["max_trials"] or plan_lib.MAX_TRIALS, plan.epochs, out, call["seed"],
               call["overwrite"])
    t.cost_budget = setup["budget"]
    recorder = TrialRecorder(out, name, direction, prune=call["prune"],
                             min_trials=call["min_trials"],
                             measure_latency=any(o == "latency" for o, _ in objectives))
    try:
        t.search(epochs=plan.epochs, callbacks=[recorder], verbose=call["verbose"])
    except ProcessBudgetReached:
        return {"budget_reached": True}
    except cost.SearchBudgetReached:
        pass            # the trials used the search's budget: export them
    if keras_tuner_is_worker():
        return {}
    result = export(t, out, objectives)
    if not (call["confirm"] and call["retrain"] and confirm_lib.needed(result)):
        (out / confirm_lib.FILE).unlink(missing_ok=True)    # an earlier choice's
        return result
    record = confirm_lib.confirm(
        result, lambda trial_id: t.oracle.trials[trial_id].hyperparameters,
        hypermodel, final=setup["final"], objective=objectives[0], out=out)
    return {**confirm_lib.settle(result, record, t.oracle, out, name),
            "confirmation": record}


def _retrain(values, space, options, **kwargs):
    """tuning.final.retrain of the best values with the final recipe."""
    recipe = final_lib.final_recipe(values, space, min_steps=options["steps"],
                                    augment=options["augment"])
    return final_lib.retrain(values, epochs=options["epochs"], recipe=recipe,
                             compare_default=options["compare_default"], **kwargs)


def _plan(model_name, dataset, data_kwargs, space, **budget):
    """The dataset's info and the search's TrialPlan, after checking that
    the images fit the model."""
    kwargs = {**data_kwargs, "limit": None, "batch_size": 64, "cache": False}
    info = data_lib.load(dataset, validation_split=0.0, **kwargs).info
    entry = zoo.registry.get_entry(model_name)
    if min(info.image_shape[:2]) < entry.min_size:
        raise InputError(f"{dataset} images are {info.image_shape[0]}×"
                         f"{info.image_shape[1]}, smaller than {model_name}'s minimum "
                         f"{entry.min_size}; pass image_size (--image-size).")
    batch = spaces.first_value("batch_size", space.get("batch_size") or {}) or \
        spaces.TRAIN_DEFAULTS["batch_size"]
    plan = plan_lib.plan_trials(info.num_train, batch_size=int(batch),
                                limit=data_kwargs.get("limit"), **budget)
    limit = data_kwargs.get("limit")
    if plan.folds > 1 or limit:   # every class must fill the folds and survive
        # the limit: checked here on the first trial's data, not in a trial.
        data_lib.load(dataset, fold=(0, plan.folds) if plan.folds > 1 else None,
                      validation_split=plan.validation_split,
                      **{**kwargs, "limit": limit})
    return info, plan


def _read_best(out):
    path = Path(out) / "best_hyperparameters.json"
    return json.loads(path.read_text()) if path.is_file() else None
