"""`TrialRecorder`: what keras-tuner does not keep about a trial (its
curve, folds, steps, wall time, memory, latency) written to
`out/trial_info/`, and the two rules that stop trials early: median
stopping after each checkpoint and racing over the folds."""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from zoo import training
from zoo.io import write_json

log = logging.getLogger("tuning.search")


class TrialRecorder(keras.callbacks.Callback):
    """Records per-trial facts keras-tuner does not keep (the objective after
    every epoch, folds, params, wall time, latency, pruned) as JSON files in
    `out/trial_info/`, and stops trials by the median-stopping rule.

    Median stopping: after epoch e (a fixed number of optimizer steps, the
    same for every trial; see tuning.plan), once `min_trials` other trials
    have reached epoch e, a trial whose objective is worse than their median
    at e stops and is marked PRUNED. Under k-fold cross-validation the rule
    looks at each trial's first fold, and a pruned trial skips the others.
    A trial's last epoch is never pruned. Racing over folds (tuning.plan):
    `goes_on` says whether a trial's first-fold score earns its other folds.
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
        self.fold_start = time.perf_counter()
        self.epoch_ends = []

    def begin_fold(self):
        """Starts the clock of a fold (before its model is built or reset)."""
        self.fold_start = time.perf_counter()

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

    def goes_on(self, score, finalists) -> bool:
        """Whether a first-fold `score` is among the `finalists` best
        first-fold scores of the recorded trials (this one included)."""
        better = 0
        for path in sorted((self.folder / "trial_info").glob("*.json")):
            if path.stem == str(self.trial_id):
                continue
            try:
                first = (json.loads(path.read_text()).get("fold_scores") or [None])[0]
            except (OSError, ValueError) as err:   # recorded, not hidden
                self.prune_error = f"{path.name}: {type(err).__name__}: {err}"
                log.warning("Racing skipped %s: %s", path.name, err)
                continue
            if first is not None and (first > score if self.direction == "max"
                                      else first < score):
                better += 1
        return better < finalists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if training.diverged(self.model, logs):
            # A diverged trial ends here (FAILED in trials.csv).
            self.diverged = True
            self.model.stop_training = True
            return
        if not self.first_fold:
            return
        # The first fold's clock: tuning.cost estimates a training run from it.
        self.epoch_ends.append(round(time.perf_counter() - self.fold_start, 3))
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
                "prune_error": self.prune_error, "epoch_ends": self.epoch_ends,
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
