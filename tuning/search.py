"""Hyperparameter search over a zoo model with keras-tuner.

`search(...)` and `zoo tune` run a keras-tuner tuner (random, bayesian,
hyperband, grid) over `ZooHyperModel`, with median-stopping trial pruning,
resume (the same command on the same folder continues; a killed trial is
re-run), and exports: trials.csv, best_hyperparameters.json,
best_model.keras, plots, and pareto.csv for several objectives.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import math
import os
import statistics
import time
import warnings
from pathlib import Path

import keras
import keras_tuner
import numpy as np

import zoo
from tuning import spaces
from zoo import data as data_lib
from zoo.factory import check_positive_int
from zoo.io import atomic_path, check_writable_dir, write_json, write_text
from zoo.errors import InputError

TUNERS = ("random", "bayesian", "hyperband", "grid")
MODEL_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
EXTRA_OBJECTIVES = ("params", "latency")
PROJECT = "search"
log = logging.getLogger("tuning.search")


class ZooHyperModel(keras_tuner.HyperModel):
    """Builds zoo models from sampled hyperparameters (no copied architecture).

    Args:
        model_name: registry name.
        num_classes: classifier width.
        input_shape: (h, w, c).
        space: dict or space file (see tuning.spaces); merged over defaults.
        dataset: source for `fit` (zoo.data.load), with `data_kwargs`.
        epochs: training epochs (for the learning-rate schedule).

    Example:
        >>> hm = ZooHyperModel("resnet20", 10, (8, 8, 1), dataset="digits")
        >>> model = hm.build(keras_tuner.HyperParameters())
    """

    def __init__(self, model_name, num_classes, input_shape, space=None, *,
                 dataset="digits", data_kwargs=None, epochs=1, num_train=1000):
        super().__init__(name=f"zoo_{model_name}")
        self.model_name = model_name
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.space = spaces.resolve_space(model_name, space)
        self.dataset = dataset
        self.data_kwargs = dict(data_kwargs or {})
        self.epochs = epochs
        self.num_train = num_train
        self._data = {}

    def build(self, hp):
        space = self.space
        batch = spaces.sample(hp, "batch_size", space, default=64)
        name, arch = spaces.architecture(hp, self.model_name, space)
        model = zoo.create_model(
            name, num_classes=self.num_classes, input_shape=self.input_shape,
            regularizer=spaces.regularizer(hp, space),
            dropout_rate=spaces.sample(hp, "dropout", space), **arch)
        smoothing = spaces.sample(hp, "label_smoothing", space, default=0.0) or 0.0
        loss = (keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
                if smoothing else keras.losses.SparseCategoricalCrossentropy())
        steps = max(1, math.ceil(self.num_train / batch))
        model.compile(optimizer=spaces.optimizer(hp, space, steps, self.epochs),
                      loss=loss, metrics=["accuracy"])
        return model

    def data(self, batch_size, augment):
        key = (batch_size, augment)
        if key not in self._data:
            self._data[key] = data_lib.load(self.dataset, batch_size=batch_size,
                                            augment=augment, **self.data_kwargs)
        return self._data[key]

    def fit(self, hp, model, *args, **kwargs):
        batch = hp.get("batch_size") if "batch_size" in hp.values else 64
        augment = spaces.sample(hp, "augment", self.space, default="none")
        data = self.data(batch, augment)
        train, val = data.train, data.val
        if hp.values.get("label_smoothing"):
            k = self.num_classes
            onehot = (lambda x, y: (x, keras.ops.one_hot(y, k)))
            train, val = train.map(onehot), val.map(onehot)
        kwargs.setdefault("validation_data", val)
        # The pipeline shuffles itself; keras-tuner passes fit's default
        # shuffle=True, which Keras ignores with a warning for tf.data.
        kwargs["shuffle"] = False
        return model.fit(train, *args, **kwargs)


class TrialRecorder(keras.callbacks.Callback):
    """Records per-trial facts keras-tuner does not keep (params, epochs run,
    wall time, latency, pruned) as JSON files in `out/trial_info/`, and stops
    trials by the median-stopping rule.

    Median stopping: at epoch e, once `min_trials` trials have finished, a
    trial whose objective is worse than the median of those trials at epoch e
    stops (it is marked PRUNED in trials.csv).
    """

    def __init__(self, folder, objective, direction, *, prune=True, min_trials=2,
                 grace_epochs=1, measure_latency=False):
        super().__init__()
        self.folder = Path(folder)
        self.objective = objective
        self.direction = direction
        self.prune = prune
        self.min_trials = min_trials
        self.grace_epochs = grace_epochs
        self.measure_latency = measure_latency
        self.trial_id = None
        self.oracle = None

    def __deepcopy__(self, memo):
        # keras-tuner deep-copies callbacks per trial; share the oracle.
        clone = copy.copy(self)
        return clone

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.epochs_run = 0
        self.pruned = False
        self.prune_error = None
        self.initial = None

    def _history_at(self, epoch):
        values = []
        try:
            trials = self.oracle.get_best_trials(10 ** 6)
        except Exception as err:     # keras-tuner's oracle: recorded, not hidden
            self.prune_error = f"{type(err).__name__}: {err}"
            log.warning("Median stopping skipped at epoch %d of trial %s: %s",
                        epoch + 1, self.trial_id, self.prune_error)
            return values
        for trial in trials:
            if trial.trial_id == self.trial_id or str(trial.status) != "COMPLETED" \
                    or not trial.metrics.exists(self.objective):
                continue
            for obs in trial.metrics.get_history(self.objective):
                if obs.step == epoch:
                    values.append(float(np.mean(obs.value)))
        return values

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            # A diverged trial ends here.
            self.model.stop_training = True
            return
        value = (logs or {}).get(self.objective)
        last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        if not self.prune or value is None or self.oracle is None \
                or epoch + 1 < self.grace_epochs or last:
            # A trial that ran its last epoch is finished, never pruned.
            return
        peers = self._history_at(epoch)
        if len(peers) < self.min_trials:
            return
        median = statistics.median(peers)
        worse = value < median if self.direction == "max" else value > median
        if worse:
            self.pruned = True
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.trial_id is None:
            return
        info = {"trial_id": self.trial_id, "params": int(self.model.count_params()),
                "epochs_run": self.epochs_run, "pruned": self.pruned,
                "prune_error": self.prune_error,
                "wall_time_s": round(time.perf_counter() - self.start, 2),
                "rss_mb": rss_mb(), "pid": os.getpid()}
        if self.measure_latency:
            x = np.zeros((1, *self.model.input_shape[1:]), np.float32)
            self.model.predict_on_batch(x)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                self.model.predict_on_batch(x)
                times.append((time.perf_counter() - t) * 1e3)
            info["latency_ms"] = statistics.median(times)
        write_json(self.folder / "trial_info" / f"{self.trial_id}.json", info)


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
            for cb in kwargs.get("callbacks", []):
                if isinstance(cb, TrialRecorder):
                    cb.trial_id = trial.trial_id
                    cb.oracle = self.oracle
            return super().run_trial(trial, *args, **kwargs)
    Recording.__name__ = tuner_cls.__name__
    return Recording


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
    common = dict(objective=objective, directory=str(out), project_name=PROJECT,
                  seed=seed, overwrite=overwrite)
    if kind == "random":
        return _with_recording(keras_tuner.RandomSearch)(hypermodel,
                                                         max_trials=max_trials, **common)
    if kind == "bayesian":
        return _with_recording(keras_tuner.BayesianOptimization)(
            hypermodel, max_trials=max_trials, **common)
    if kind == "grid":
        return _with_recording(keras_tuner.GridSearch)(hypermodel,
                                                       max_trials=max_trials, **common)
    return _with_recording(keras_tuner.Hyperband)(
        hypermodel, max_epochs=max(2, epochs), factor=3,
        hyperband_iterations=1, max_retries_per_trial=0, **common)


def check_tuner(kind):
    if kind not in TUNERS:
        import difflib
        close = difflib.get_close_matches(str(kind), TUNERS, n=1)
        hint = f" Did you mean: {close[0]}?" if close else ""
        raise InputError(f"Unknown tuner {kind!r}.{hint} Use one of {', '.join(TUNERS)}.")
    if kind == "bayesian":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise InputError("The bayesian tuner needs scikit-learn: "
                             "pip install scikit-learn.") from None


def search(model_name, dataset="digits", *, tuner="random", max_trials=10, epochs=3,
           objective="val_accuracy", out, seed=0, space=None, data_dir=None,
           image_size=None, prune=True, min_trials=2, overwrite=False, verbose=0,
           limit=None, trials_per_process=None):
    """Runs (or resumes) a search and writes its exports into `out`.

    Args:
        model_name: registry name.
        dataset: data source (see zoo.data.load).
        tuner: "random", "bayesian", "hyperband" or "grid".
        max_trials: trials to run (for hyperband: the bracket budget is set
            by `epochs` and this caps the trials).
        epochs: epochs per trial (hyperband: max epochs).
        objective: "val_accuracy", or several comma-separated for a Pareto
            front, e.g. "val_accuracy,params" or "val_accuracy,latency".
        out: output folder; the same folder resumes.
        space: dict or JSON/YAML file (see tuning.spaces).
        prune: median-stopping trial pruning.
        trials_per_process: run the trials in fresh child processes, at most
            this many each, one after the other (the search resumes in each).
            TensorFlow-backend Keras keeps ~50 MB per trained model that no
            clear_session returns (docs/tuning.md); this bounds the memory
            of long searches at the cost of a process start per K trials.

    Returns:
        dict with best hyperparameters, best score and trial rows.

    Example:
        >>> tuning.search("resnet20", "digits", tuner="random", max_trials=4,
        ...               epochs=2, out="runs/tune")
    """
    # Everything is checked before the first trial.
    check_tuner(tuner)
    check_positive_int(max_trials, "max_trials")
    check_positive_int(epochs, "epochs")
    if trials_per_process is not None:
        check_positive_int(trials_per_process, "trials_per_process")
    objectives = parse_objectives(objective)
    resolved = spaces.resolve_space(model_name, space)
    data_lib.check_source(dataset, data_dir)
    out = check_writable_dir(out)
    data_kwargs = {"data_dir": data_dir, "image_size": image_size, "seed": seed,
                   "limit": limit}
    probe = data_lib.load(dataset, batch_size=64, **data_kwargs)
    info = probe.info
    entry = zoo.registry.get_entry(model_name)
    if min(info.image_shape[:2]) < entry.min_size:
        raise InputError(f"{dataset} images are {info.image_shape[0]}×"
                         f"{info.image_shape[1]}, smaller than {model_name}'s minimum "
                         f"{entry.min_size}; pass image_size (--image-size).")
    if probe.val is None:
        raise InputError("The search needs a validation split (validation_split > 0).")
    hypermodel = ZooHyperModel(model_name, info.num_classes, info.image_shape,
                               resolved, dataset=dataset, data_kwargs=data_kwargs,
                               epochs=epochs, num_train=info.num_train)
    name, direction = objectives[0]
    kt_objective = keras_tuner.Objective(name, direction=direction)
    write_json(out / "search_config.json", {
        "model": model_name, "dataset": dataset, "tuner": tuner,
        "max_trials": max_trials, "epochs": epochs, "objective": objective,
        "seed": seed, "space": resolved, "prune": prune})
    if trials_per_process and not os.environ.get(PROCESS_BUDGET_ENV) \
            and not os.environ.get("KERASTUNER_TUNER_ID"):
        _search_in_processes(trials_per_process, out, dict(
            model_name=model_name, dataset=dataset, tuner=tuner,
            max_trials=max_trials, epochs=epochs, objective=objective,
            out=str(out), seed=seed,
            space=str(space) if isinstance(space, Path) else space,
            data_dir=None if data_dir is None else str(data_dir),
            image_size=image_size, prune=prune, min_trials=min_trials,
            overwrite=overwrite, verbose=verbose, limit=limit))
        overwrite = False       # the children ran it; this process only exports
    t = _tuner(tuner, hypermodel, kt_objective, max_trials, epochs, out, seed, overwrite)
    recorder = TrialRecorder(out, name, direction, prune=prune, min_trials=min_trials,
                             measure_latency=any(o == "latency" for o, _ in objectives))
    try:
        t.search(epochs=epochs, callbacks=[recorder], verbose=verbose)
    except _ProcessBudgetReached:
        return {"budget_reached": True}
    if keras_tuner_is_worker():
        return {}
    return export(t, out, objectives)


_CHILD = ("import json, sys\n"
          "from tuning.search import search\n"
          "result = search(**json.loads(sys.argv[1]))\n"
          "sys.exit(3 if result.get('budget_reached') else 0)\n")


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
        if info.get("pruned") and status == "COMPLETED":
            status = "PRUNED"
        row = {"trial_id": trial_id, "status": status,
               "score": trial.score, "epochs_run": info.get("epochs_run"),
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
    """trials.csv, best_hyperparameters.json, best_model.keras, plots, pareto."""
    out = Path(out)
    rows, hp_names = _trial_rows(tuner, out)
    fields = ["trial_id", "status", *hp_names, "score", "epochs_run",
              "wall_time_s", "params", "latency_ms", "rss_mb", "prune_error"]
    _write_csv(out / "trials.csv", rows, fields)
    best_hp = tuner.get_best_hyperparameters(1)
    result = {"trials": rows, "objective": [o for o, _ in objectives]}
    if best_hp:
        best_trial = tuner.oracle.get_best_trials(1)[0]
        write_json(out / "best_hyperparameters.json",
                   {"trial_id": best_trial.trial_id, "score": best_trial.score,
                    "objective": objectives[0][0], "values": best_hp[0].values})
        result.update(best_hyperparameters=best_hp[0].values,
                      best_score=best_trial.score, best_trial=best_trial.trial_id)
        try:
            with warnings.catch_warnings():
                # keras-tuner loads the trial's checkpoint into a freshly
                # compiled model whose optimizer is not built; the optimizer
                # state it skips is not part of best_model.keras.
                warnings.filterwarnings("ignore", message="Skipping variable loading "
                                        "for optimizer")
                model = tuner.get_best_models(1)[0]
        except Exception as err:       # keras-tuner reloading its checkpoint
            model = None
            result["best_model_error"] = f"{type(err).__name__}: {err}"
            log.warning("The best trial's model (%s) could not be reloaded, so "
                        "best_model.keras was not written: %s",
                        best_trial.trial_id, result["best_model_error"])
            write_json(out / "best_model_error.json",
                       {"trial_id": best_trial.trial_id,
                        "error": result["best_model_error"]})
        if model is not None:
            with atomic_path(out / "best_model.keras") as tmp:
                model.save(tmp)
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
        lines.append(f"best trial {best['trial_id']}: {best['objective']} = "
                     f"{best['score']:.4f}")
        for k, v in sorted(best["values"].items()):
            lines.append(f"  {k} = {v}")
    if (out / "pareto.csv").is_file():
        with open(out / "pareto.csv") as f:
            front = [r["trial_id"] for r in csv.DictReader(f)]
        lines.append(f"Pareto front: trials {', '.join(front)}")
    return "\n".join(lines)
