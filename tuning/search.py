"""Hyperparameter search over a zoo model with keras-tuner.

`search(...)` and `zoo tune` run a keras-tuner tuner (random, bayesian,
hyperband, grid) over `ZooHyperModel`, with median-stopping trial pruning,
resume (the same command on the same folder continues; a killed trial is
re-run), and exports: trials.csv, best_hyperparameters.json,
best_model.keras, plots, and pareto.csv for several objectives.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import statistics
import time
from pathlib import Path

import keras
import keras_tuner
import numpy as np

import zoo
from . import final as final_lib
from . import plan as plan_lib
from . import spaces
from zoo import data as data_lib
from zoo import training
from zoo.errors import InputError, check_positive_int, did_you_mean, require
from zoo.io import atomic_path, check_writable_dir, write_json, write_text

TUNERS = ("random", "bayesian", "hyperband", "grid")
MODEL_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
EXTRA_OBJECTIVES = ("params", "latency")
PROJECT = "search"
log = logging.getLogger("tuning.search")


class ZooHyperModel(keras_tuner.HyperModel):
    """Builds zoo models from sampled hyperparameters (no copied architecture)
    and trains them for the search's TrialPlan.

    Args:
        model_name: registry name.
        num_classes: classifier width.
        input_shape: (h, w, c).
        space: dict, space file, "focused" or "wide" (see tuning.spaces).
        dataset: source for `fit` (zoo.data.load), with `data_kwargs`.
        plan: tuning.plan.TrialPlan (budget in optimizer steps, folds).

    Example:
        >>> hm = ZooHyperModel("resnet20", 10, (8, 8, 1), dataset="digits",
        ...                    plan=plan_trials(1437))
        >>> model = hm.build(keras_tuner.HyperParameters())
    """

    def __init__(self, model_name, num_classes, input_shape, space=None, *,
                 dataset="digits", data_kwargs=None, plan=None):
        super().__init__(name=f"zoo_{model_name}")
        self.model_name = model_name
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.space = spaces.resolve_space(model_name, space)
        self.dataset = dataset
        self.data_kwargs = dict(data_kwargs or {})
        self.plan = plan or plan_lib.plan_trials(1000)
        self._data = {}

    def build(self, hp):
        space = self.space
        # Declared here so that keras-tuner knows them; `trial_data` reads them.
        spaces.sample(hp, "batch_size", space,
                      default=spaces.TRAIN_DEFAULTS["batch_size"])
        spaces.sample(hp, "augment", space, default="none")
        name, arch = spaces.architecture(hp, self.model_name, space)
        model = zoo.create_model(
            name, num_classes=self.num_classes, input_shape=self.input_shape,
            regularizer=spaces.regularizer(hp, space),
            dropout_rate=spaces.sample(hp, "dropout", space), **arch)
        smoothing = spaces.sample(hp, "label_smoothing", space, default=0.0) or 0.0
        loss = (keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
                if smoothing else keras.losses.SparseCategoricalCrossentropy())
        plan = self.plan
        model.compile(optimizer=spaces.optimizer(hp, space, plan.total_steps,
                                                 plan.steps_per_epoch),
                      loss=loss, metrics=["accuracy"])
        return model

    def data(self, batch_size, augment, fold=None):
        key = (batch_size, augment, fold)
        if key not in self._data:
            self._data[key] = data_lib.load(
                self.dataset, batch_size=batch_size, augment=augment, fold=fold,
                validation_split=self.plan.validation_split, **self.data_kwargs)
        return self._data[key]

    def trial_data(self, hp, fold=None):
        """The Data a trial with these hyperparameters trains on."""
        batch = hp.get("batch_size") if "batch_size" in hp.values else \
            spaces.TRAIN_DEFAULTS["batch_size"]
        augment = hp.get("augment") if "augment" in hp.values else "none"
        return self.data(batch, augment, fold)

    def fit(self, hp, model, *args, fold=None, **kwargs):
        """Trains for the plan's epochs of `steps_per_epoch` optimizer steps
        each (on `fold` of a k-fold partition, or on the holdout split)."""
        data = self.trial_data(hp, fold)
        train, val = data.train, data.val
        if hp.values.get("label_smoothing"):
            train, val = (data_lib.one_hot(ds, self.num_classes) for ds in (train, val))
        kwargs.setdefault("validation_data", val)
        # The pipeline shuffles itself; keras-tuner passes fit's default
        # shuffle=True, which Keras ignores with a warning for tf.data.
        kwargs["shuffle"] = False
        training.build_for_fit(model, train)
        return model.fit(train.repeat(), *args,
                         steps_per_epoch=self.plan.steps_per_epoch, **kwargs)


class TrialRecorder(keras.callbacks.Callback):
    """Records per-trial facts keras-tuner does not keep (the objective after
    every epoch, folds, params, wall time, latency, pruned) as JSON files in
    `out/trial_info/`, and stops trials by the median-stopping rule.

    Median stopping: after epoch e (a fixed number of optimizer steps, the
    same for every trial; see tuning.plan), once `min_trials` other trials
    have reached epoch e, a trial whose objective is worse than their median
    at e stops and is marked PRUNED. Under k-fold cross-validation the rule
    looks at each trial's first fold, and a pruned trial skips the others.
    A trial's last epoch is never pruned.
    """

    def __init__(self, folder, objective, direction, *, prune=True, min_trials=2,
                 grace_epochs=2, measure_latency=False):
        super().__init__()
        self.folder = Path(folder)
        self.objective = objective
        self.direction = direction
        self.prune = prune
        self.min_trials = min_trials
        self.grace_epochs = grace_epochs
        self.measure_latency = measure_latency
        self.trial_id = None
        self.first_fold = True

    def __deepcopy__(self, memo):
        # keras-tuner deep-copies callbacks per execution; one recorder
        # follows the whole trial.
        return self

    def begin_trial(self, trial_id):
        self.trial_id = trial_id
        self.start = time.perf_counter()
        self.curve = []
        self.epochs_run = 0
        self.pruned = False
        self.diverged = False
        self.prune_error = None
        self.first_fold = True

    def _peers_at(self, epoch):
        """The objective of the other recorded trials after `epoch`."""
        values = []
        for path in sorted((self.folder / "trial_info").glob("*.json")):
            if path.stem == str(self.trial_id):
                continue
            try:
                curve = json.loads(path.read_text()).get("curve") or []
            except (OSError, ValueError) as err:   # recorded, not hidden
                self.prune_error = f"{path.name}: {type(err).__name__}: {err}"
                log.warning("Median stopping skipped %s: %s", path.name, err)
                continue
            if epoch < len(curve) and curve[epoch] is not None:
                values.append(float(curve[epoch]))
        return values

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if training.diverged(self.model, logs):
            # A diverged trial ends here (FAILED in trials.csv).
            self.diverged = True
            self.model.stop_training = True
            return
        if not self.first_fold:
            return
        self.epochs_run = epoch + 1
        value = logs.get(self.objective)
        self.curve += [None] * (epoch + 1 - len(self.curve))
        self.curve[epoch] = None if value is None else float(value)
        last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        if not self.prune or value is None or epoch + 1 < self.grace_epochs or last:
            # A trial that ran its last epoch is finished, never pruned.
            return
        peers = self._peers_at(epoch)
        if len(peers) < self.min_trials:
            return
        median = statistics.median(peers)
        worse = value < median if self.direction == "max" else value > median
        if worse:
            self.pruned = True
            self.model.stop_training = True

    def end_trial(self, model, **facts):
        """Writes the trial's JSON record (`facts` are added to it)."""
        info = {"trial_id": self.trial_id, "params": int(model.count_params()),
                "epochs_run": self.epochs_run, "pruned": self.pruned,
                "diverged": self.diverged, "curve": self.curve,
                "prune_error": self.prune_error,
                "wall_time_s": round(time.perf_counter() - self.start, 2),
                "rss_mb": rss_mb(), "pid": os.getpid(), **facts}
        if self.measure_latency:
            info["latency_ms"] = _latency_ms(model)
        write_json(self.folder / "trial_info" / f"{self.trial_id}.json", info)


def _latency_ms(model, repeats=20):
    """Median batch-1 inference time of `model` in milliseconds."""
    x = np.zeros((1, *model.input_shape[1:]), np.float32)
    model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict_on_batch(x)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def rss_mb():
    """Resident memory of this process in MB (Linux /proc), else None."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)


# Set by `search(trials_per_process=K)` in the child processes it starts.
PROCESS_BUDGET_ENV = "ZOO_TUNE_TRIALS_PER_PROCESS"


class _ProcessBudgetReached(Exception):
    """This process ran its share of trials; a fresh process continues."""


def _with_recording(tuner_cls):
    class Recording(tuner_cls):
        trials_this_process = 0

        def pre_create_trial(self):
            budget = int(os.environ.get(PROCESS_BUDGET_ENV) or 0)
            if budget and self.trials_this_process >= budget:
                raise _ProcessBudgetReached()
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

        def _build_hypermodel(self, hp):
            self._last_model = super()._build_hypermodel(hp)
            return self._last_model
    Recording.__name__ = tuner_cls.__name__
    return Recording


def _run_folds(tuner, trial, recorder, *args, **kwargs):
    """One trial under the search's TrialPlan: trained on each fold (or the
    holdout), scored by the objective after its last epoch, averaged over
    the folds. A pruned trial stops after its first fold."""
    hypermodel, hp = tuner.hypermodel, trial.hyperparameters
    objective = tuner.oracle.objective.name
    plan = hypermodel.plan
    scores, scored = [], 0
    for fold in plan.fold_ids():
        model = tuner._try_build(hp)
        history = hypermodel.fit(hp, model, *args, fold=fold, **kwargs)
        recorder.first_fold = False
        values = history.history.get(objective) or [None]
        if recorder.diverged or values[-1] is None:
            break
        scores.append(float(values[-1]))
        scored += hypermodel.trial_data(hp, fold).info.num_val
        if recorder.pruned:
            break
    score = statistics.fmean(scores) if scores else None
    recorder.end_trial(model, folds=plan.folds, folds_run=len(scores),
                       fold_scores=scores, score=score, scored=scored,
                       score_se=plan_lib.standard_error(scores, scored, objective),
                       planned_epochs=plan.epochs)
    if score is None:
        raise keras_tuner.errors.FailedTrialError(
            "The loss became NaN (the trial diverged).")
    return {objective: score}


def parse_objectives(objective: str):
    """"val_accuracy,params" -> [("val_accuracy", "max"), ("params", "min")]."""
    names = [o.strip() for o in str(objective).split(",") if o.strip()]
    if not names:
        raise InputError("objective is empty; use e.g. 'val_accuracy'.")
    out = []
    for name in names:
        if name not in MODEL_METRICS + EXTRA_OBJECTIVES:
            raise InputError(f"The model does not produce objective {name!r}; use "
                             f"{', '.join(MODEL_METRICS)} (or params, latency as "
                             "extra Pareto objectives).")
        out.append((name, "min" if "loss" in name or name in EXTRA_OBJECTIVES else "max"))
    if out[0][0] not in MODEL_METRICS:
        raise InputError(f"The first objective guides the search and must be a "
                         f"model metric ({', '.join(MODEL_METRICS)}); got {out[0][0]!r}.")
    return out


def _tuner(kind, hypermodel, objective, max_trials, epochs, out, seed, overwrite):
    # A diverged trial is FAILED; it does not end the search.
    common = dict(objective=objective, directory=str(out), project_name=PROJECT,
                  seed=seed, overwrite=overwrite,
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


def check_tuner(kind):
    if kind not in TUNERS:
        raise InputError(f"Unknown tuner {kind!r}.{did_you_mean(kind, TUNERS)} "
                         f"Use one of {', '.join(TUNERS)}.")
    if kind == "bayesian":
        require("sklearn", "The bayesian tuner needs scikit-learn: "
                           "pip install scikit-learn.")


def search(model_name, dataset="digits", *, tuner="random", max_trials=10, epochs=None,
           trial_steps=None, folds=None, objective="val_accuracy", out, seed=0,
           space=None, data_dir=None, image_size=None, prune=True, min_trials=2,
           overwrite=False, verbose=0, limit=None, trials_per_process=None,
           retrain=True, final_epochs=None, final_steps=None, final_augment=None,
           compare_default=True):
    """Runs (or resumes) a search, retrains its best configuration and
    writes the exports into `out` (docs/tuning.md).

    Args:
        model_name, dataset: registry name; data source (zoo.data.load).
        tuner: "random", "bayesian", "hyperband" or "grid".
        max_trials: trials to run (hyperband: caps its brackets).
        trial_steps, epochs: a trial's budget in optimizer steps, or passes
            (default: tuning.plan).
        folds: None (3-fold cross-validation below 5,000 labelled images,
            else a holdout), 1 (holdout) or k.
        objective: "val_accuracy", or several for a Pareto front, e.g.
            "val_accuracy,params" or "val_accuracy,latency".
        out: output folder; the same folder resumes.
        space: "focused" (default), "wide", a dict or a JSON/YAML file.
        prune: median-stopping trial pruning.
        trials_per_process: run the trials in fresh processes of at most K
            trials each (bounds TensorFlow's memory growth).
        retrain, final_steps, final_epochs, final_augment: train the best
            configuration again on train + validation (tuning.final) and
            test it: best_model.keras.
        compare_default: also train `zoo train`'s defaults for the report.

    Returns:
        dict with the best hyperparameters and score, the trial rows and
        the retrained model's test accuracy.

    Example:
        >>> tuning.search("resnet20", "digits", max_trials=10, out="runs/tune")
    """
    call = dict(locals())           # the arguments, for child processes
    setup = _setup(call)            # everything checked before the first trial
    out, plan = setup["out"], setup["plan"]
    if trials_per_process and not os.environ.get(PROCESS_BUDGET_ENV) \
            and not os.environ.get("KERASTUNER_TUNER_ID"):
        _search_in_processes(trials_per_process, out, _child_kwargs(call, out))
        call["overwrite"] = False   # the children ran it; this process only exports
    info = setup["info"]
    result = _run_trials(call, setup["objectives"], ZooHyperModel(
        model_name, info.num_classes, info.image_shape, setup["space"],
        dataset=dataset, data_kwargs=setup["data_kwargs"], plan=plan), plan, out)
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
                           final=final, best=_read_best(out))
    return result


def check_arguments(model_name, dataset="digits", *, tuner="random", max_trials=10,
                    objective="val_accuracy", space=None, data_dir=None,
                    trials_per_process=None, retrain=True, final_epochs=None,
                    final_steps=None, final_augment=None, compare_default=True,
                    **_) -> dict:
    """search()'s arguments that need no data, checked (the command line
    calls it before it starts a distributed search's processes): the
    final retraining's options, the objectives and the resolved space."""
    check_tuner(tuner)
    check_positive_int(max_trials, "max_trials")
    final = _final_options(retrain, final_epochs, final_steps, final_augment,
                           compare_default)
    if trials_per_process is not None:
        check_positive_int(trials_per_process, "trials_per_process")
    objectives = parse_objectives(objective)
    resolved = spaces.resolve_space(model_name, space)
    data_lib.check_source(dataset, data_dir)
    return {"final": final, "objectives": objectives, "space": resolved}


def _setup(call) -> dict:
    """search()'s arguments checked (before any trial), its space, plan and
    output folder; writes search_config.json."""
    c = call
    checked = check_arguments(**c)
    final, objectives, space = checked["final"], checked["objectives"], checked["space"]
    out = check_writable_dir(c["out"])
    data_kwargs = {k: c[k] for k in ("data_dir", "image_size", "seed", "limit")}
    info, plan = _plan(c["model_name"], c["dataset"], data_kwargs, space,
                       folds=c["folds"], trial_steps=c["trial_steps"],
                       epochs=c["epochs"], tuner=c["tuner"])
    write_json(out / "search_config.json", {
        **{k: c[k] for k in ("dataset", "tuner", "max_trials", "objective", "seed",
                             "prune")},
        "model": c["model_name"], "space": space, "plan": plan.to_dict()})
    if c["verbose"]:
        print(plan.describe(), flush=True)
    return {"out": out, "plan": plan, "info": info, "space": space, "final": final,
            "objectives": objectives, "data_kwargs": data_kwargs}


def _run_trials(call, objectives, hypermodel, plan, out) -> dict:
    """keras-tuner's search with the trial recorder; the exports (or {} in a
    worker, {"budget_reached": True} in a process that ran its share)."""
    name, direction = objectives[0]
    t = _tuner(call["tuner"], hypermodel, keras_tuner.Objective(name, direction=direction),
               call["max_trials"], plan.epochs, out, call["seed"], call["overwrite"])
    recorder = TrialRecorder(out, name, direction, prune=call["prune"],
                             min_trials=call["min_trials"],
                             measure_latency=any(o == "latency" for o, _ in objectives))
    try:
        t.search(epochs=plan.epochs, callbacks=[recorder], verbose=call["verbose"])
    except _ProcessBudgetReached:
        return {"budget_reached": True}
    if keras_tuner_is_worker():
        return {}
    return export(t, out, objectives)


def _final_options(retrain, epochs, steps, augment, compare_default) -> dict:
    """The final retraining's options, checked."""
    for value, what in ((epochs, "final_epochs"), (steps, "final_steps")):
        if value is not None:
            check_positive_int(value, what)
    given = [name for name, value in (("final_epochs", epochs), ("final_steps", steps),
                                      ("final_augment", augment)) if value is not None]
    if not compare_default:
        given.append("compare_default=False")
    if not retrain and given:
        raise InputError(f"{', '.join(given)} set the final retraining, which "
                         "retrain=False (--no-retrain) skips: they would have no "
                         "effect. Drop them or the retrain=False.")
    if epochs is not None and steps is not None:
        raise InputError("Give the final retraining's budget as final_epochs or "
                         "final_steps (--final-epochs, --final-steps), not both: "
                         "one would replace the other.")
    if augment is not None and augment not in spaces.AUGMENTS:
        raise InputError(f"final_augment must be one of {', '.join(spaces.AUGMENTS)}; "
                         f"got {augment!r}.")
    return {"retrain": retrain, "epochs": epochs, "steps": steps, "augment": augment,
            "compare_default": compare_default}


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
    if plan.folds > 1:          # every class must fill the folds: checked here,
        data_lib.load(dataset, fold=(0, plan.folds), **kwargs)  # not in a trial
    return info, plan


def _read_best(out):
    path = Path(out) / "best_hyperparameters.json"
    return json.loads(path.read_text()) if path.is_file() else None


_CHILD = ("import json, sys\n"
          f"from {__package__}.search import search\n"
          "result = search(**json.loads(sys.argv[1]))\n"
          "sys.exit(3 if result.get('budget_reached') else 0)\n")


def _child_kwargs(call, out) -> dict:
    """search()'s arguments for a child process that runs trials only (JSON:
    paths as strings; no retraining, no nested processes)."""
    kwargs = {k: v for k, v in call.items() if k not in (
        "trials_per_process", "final_epochs", "final_steps", "final_augment",
        "compare_default")}
    kwargs.update(out=str(out), retrain=False,
                  space=str(call["space"]) if isinstance(call["space"], Path)
                  else call["space"],
                  data_dir=None if call["data_dir"] is None else str(call["data_dir"]))
    return kwargs


def _search_in_processes(per_process, out, kwargs):
    """Runs the search in child processes of at most `per_process` trials
    each until one of them finds the search complete."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env[PROCESS_BUDGET_ENV] = str(per_process)
    info = Path(out) / "trial_info"
    while True:
        before = len(list(info.glob("*.json"))) if info.is_dir() else 0
        code = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(kwargs)],
                              env=env).returncode
        kwargs["overwrite"] = False
        if code == 0:
            return
        after = len(list(info.glob("*.json"))) if info.is_dir() else 0
        if code != 3 or after == before:
            raise RuntimeError(f"A search process stopped with exit status {code} "
                               f"after {after - before} new trial(s); rerun the same "
                               "command to resume from the finished trials.")


def keras_tuner_is_worker():
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return bool(tuner_id) and "chief" not in tuner_id


def _trial_rows(tuner, out):
    oracle = tuner.oracle
    rows = []
    hp_names = sorted({n for t in oracle.trials.values() for n in t.hyperparameters.values})
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        info_path = Path(out) / "trial_info" / f"{trial_id}.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        status = str(trial.status)
        planned = info.get("planned_epochs") or math.inf
        if info.get("pruned") and status == "COMPLETED" \
                and (info.get("epochs_run") or 0) < planned:
            status = "PRUNED"
        row = {"trial_id": trial_id, "status": status,
               "score": trial.score, "score_se": info.get("score_se"),
               "scored": info.get("scored"), "folds_run": info.get("folds_run"),
               "epochs_run": info.get("epochs_run"),
               "wall_time_s": info.get("wall_time_s"), "params": info.get("params"),
               "latency_ms": info.get("latency_ms"), "rss_mb": info.get("rss_mb"),
               "prune_error": info.get("prune_error")}
        for n in hp_names:
            row[n] = trial.hyperparameters.values.get(n)
        rows.append(row)
    return rows, hp_names


def pareto_front(points, directions):
    """Indices of the non-dominated points.

    Args:
        points: list of tuples of objective values.
        directions: "max"/"min" per objective.
    """
    sign = [1 if d == "max" else -1 for d in directions]
    scored = [tuple(s * v for s, v in zip(sign, p)) for p in points]
    front = []
    for i, p in enumerate(scored):
        dominated = any(all(q[k] >= p[k] for k in range(len(p))) and q != p
                        for j, q in enumerate(scored) if j != i)
        if not dominated:
            front.append(i)
    return front


def _write_csv(path, rows, fields):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _plots(rows, hp_names, objective, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in rows if r["score"] is not None]
    if not done:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for status, marker in (("COMPLETED", "o"), ("PRUNED", "x")):
        pts = [(int(r["trial_id"]), r["score"]) for r in done if r["status"] == status]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, label=status.lower())
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "objective_by_trial.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    shown = [n for n in hp_names if any(r.get(n) is not None for r in done)]
    if not shown:
        return
    cols = min(4, len(shown))
    rows_n = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.6 * rows_n),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), shown):
        pts = [(r[name], r["score"]) for r in done if r.get(name) is not None]
        xs = [p[0] for p in pts]
        if all(isinstance(x, (int, float)) for x in xs):
            ax.scatter(xs, [p[1] for p in pts])
            if name in ("learning_rate", "l1", "l2", "weight_decay", "epsilon") \
                    and min(xs) > 0:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            ax.scatter([labels.index(str(x)) for x in xs], [p[1] for p in pts])
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out / "objective_by_hyperparameter.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def export(tuner, out, objectives):
    """trials.csv, best_hyperparameters.json, plots, pareto."""
    out = Path(out)
    rows, hp_names = _trial_rows(tuner, out)
    fields = ["trial_id", "status", *hp_names, "score", "score_se", "scored",
              "folds_run", "epochs_run", "wall_time_s", "params", "latency_ms",
              "rss_mb", "prune_error"]
    _write_csv(out / "trials.csv", rows, fields)
    best_hp = tuner.get_best_hyperparameters(1)
    result = {"trials": rows, "hp_names": hp_names,
              "objective": [o for o, _ in objectives]}
    if best_hp:
        best_trial = tuner.oracle.get_best_trials(1)[0]
        write_json(out / "best_hyperparameters.json",
                   {"trial_id": best_trial.trial_id, "score": best_trial.score,
                    "objective": objectives[0][0], "values": best_hp[0].values})
        result.update(best_hyperparameters=best_hp[0].values,
                      best_score=best_trial.score, best_trial=best_trial.trial_id)
    _plots(rows, hp_names, objectives[0][0], out)
    if len(objectives) > 1:
        key = {"params": "params", "latency": "latency_ms"}
        usable = [r for r in rows if r["score"] is not None
                  and all(r.get(key.get(o, "score")) is not None for o, _ in objectives)]
        points = [tuple(r[key.get(o, "score")] if o in key else r["score"]
                        for o, _ in objectives) for r in usable]
        front = [usable[i] for i in pareto_front(points, [d for _, d in objectives])]
        _write_csv(out / "pareto.csv", front, fields)
        _pareto_plot(usable, front, objectives, key, out)
        result["pareto"] = [r["trial_id"] for r in front]
    return result


def _pareto_plot(rows, front, objectives, key, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    (o1, _), (o2, _) = objectives[0], objectives[1]
    x = lambda r: r[key[o2]] if o2 in key else r["score"]  # noqa: E731
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter([x(r) for r in rows], [r["score"] for r in rows], label="trials")
    f = sorted(front, key=x)
    ax.plot([x(r) for r in f], [r["score"] for r in f], "r-o", label="Pareto front")
    ax.set_xlabel(o2)
    ax.set_ylabel(o1)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out / "pareto.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def report(out) -> str:
    """The summary of a finished search folder, as text."""
    out = Path(out)
    if not (out / "trials.csv").is_file():
        raise InputError(f"{out} holds no finished search (trials.csv missing).")
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    lines = [f"{len(rows)} trials in {out}"]
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines.append(", ".join(f"{k.lower()}: {v}" for k, v in sorted(counts.items())))
    best_path = out / "best_hyperparameters.json"
    if best_path.is_file():
        best = json.loads(best_path.read_text())
        if best.get("score") is None:
            lines.append("no trial finished with a score: every trial failed "
                         f"(their errors are in {out / 'trials.csv'})")
        else:
            lines.append(f"best trial {best['trial_id']}: {best['objective']} = "
                         f"{best['score']:.4f}")
        for k, v in sorted(best["values"].items()):
            lines.append(f"  {k} = {v}")
    if (out / "pareto.csv").is_file():
        with open(out / "pareto.csv") as f:
            front = [r["trial_id"] for r in csv.DictReader(f)]
        lines.append(f"Pareto front: trials {', '.join(front)}")
    final_path = out / "final.json"
    if final_path.is_file():
        final = json.loads(final_path.read_text())
        lines.append(f"best configuration retrained on train + validation: test "
                     f"accuracy {final['best']['test_accuracy']:.4f} "
                     f"({final['best']['optimizer_steps']} optimizer steps) -> "
                     f"{out / 'best_model.keras'}")
        if final.get("default"):
            lines.append(f"zoo train defaults on the same data: test accuracy "
                         f"{final['default']['test_accuracy']:.4f}")
    if (out / "report.md").is_file():
        lines.append(f"trial scores with their standard errors: {out / 'report.md'}")
    return "\n".join(lines)
