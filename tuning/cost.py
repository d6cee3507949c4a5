"""A search's cost counted in training runs.

A default search (no `max_trials` given) stops starting trials once its
trials have used TRIAL_BUDGET training runs' worth of wall time, so that
trials + final retraining cost a few runs of `zoo train` whatever the image
size (issue #27; docs/tuning.md, "Cost"). One run is estimated from the
search's own first fold, which trains `zoo train`'s configuration: its
fixed cost (building the model, tracing its training and evaluation steps)
plus the optimizer steps of a `zoo train` run on this data at the measured
seconds per step. The decision reads the trial records in
`out/trial_info/`, so a resumed search (or one run in several processes)
counts every trial once; it is written to `out/budget.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from zoo.errors import InputError
from zoo.io import write_json

# Training runs' worth of wall time the trials of a default search may use
# (measured in docs/tuning.md, "Cost"): one, so that the trials, a switch
# confirmed at the final run's length (two runs, tuning.confirm) and the
# final retraining stay within issue #27's four runs of `zoo train`.
TRIAL_BUDGET = 1.0
# Trials a budget never stops before: `zoo train`'s configuration and one more.
MIN_TRIALS = 2


class SearchBudgetReached(Exception):
    """The trials used the search's budget; the search ends with them."""


def resolve_budget(budget, max_trials, tuner, distributed=False):
    """The budget in training runs (None: none). `budget` None is the
    default: TRIAL_BUDGET for a default search (`max_trials` not given),
    none when the user asked for a number of trials, which is then run
    exactly. 0 turns the budget off."""
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) \
                or not math.isfinite(budget) or budget < 0:
            raise InputError(f"budget is in training runs and must be a number >= 0 "
                             f"(0: no budget); got {budget!r}.")
        if budget and tuner == "hyperband":
            raise InputError("budget counts the trials' wall time from their folds; "
                             "Hyperband continues trials from checkpoints and has its "
                             "own budget (max_trials, epochs). Drop budget.")
        if budget and distributed:
            raise InputError("budget applies to a search in one process (or "
                             "trials_per_process); with workers the chief's "
                             "max_trials decides. Drop budget, or the workers.")
        return float(budget) or None
    if max_trials is not None or tuner == "hyperband" or distributed:
        return None
    return TRIAL_BUDGET


@dataclass(frozen=True)
class RunEstimate:
    """One training run, estimated from a trial's first fold."""

    fixed_s: float      # what a fold costs besides its steps: build, traces
    step_s: float       # seconds per optimizer step (evaluations included)
    steps: int          # optimizer steps of a `zoo train` run on this data

    @property
    def seconds(self) -> float:
        return self.fixed_s + self.steps * self.step_s


def estimate(record, steps_per_epoch, run_steps):
    """RunEstimate from a trial record's first fold (`fold_seconds`, and
    `epoch_ends`: seconds from the fold's start to each epoch's end), or
    None when the fold did not run two epochs."""
    ends = record.get("epoch_ends") or []
    folds = record.get("fold_seconds") or []
    if len(ends) < 2 or not folds:
        return None
    step_s = (ends[-1] - ends[0]) / ((len(ends) - 1) * steps_per_epoch)
    fixed = max(0.0, folds[0] - len(ends) * steps_per_epoch * step_s)
    return RunEstimate(fixed_s=round(fixed, 2), step_s=step_s, steps=int(run_steps))


def read_records(out):
    """The trial records of `out/trial_info/`, in trial order."""
    folder = Path(out) / "trial_info"
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(json.loads(path.read_text()))
        except ValueError as err:
            raise InputError(f"{path} is damaged ({err}); delete it to re-run that "
                             "trial.") from err
    return records


@dataclass(frozen=True)
class Budget:
    """The trials' budget of one search: `runs` training runs of
    `run_steps` optimizer steps; trials have `steps_per_epoch` steps an
    epoch; keras-tuner ends the search itself at `max_trials`."""

    runs: float
    run_steps: int
    steps_per_epoch: int
    max_trials: int | None = None

    def check(self, out):
        """Raises SearchBudgetReached when the next trial would take the
        trials past the budget (expected cost of a trial: the mean of the
        recorded first folds); writes the decision to out/budget.json."""
        records = read_records(out)
        if len(records) < MIN_TRIALS:
            return
        run = next((e for e in (estimate(r, self.steps_per_epoch, self.run_steps)
                                for r in records) if e), None)
        if run is None:
            return
        spent = sum(float(r.get("wall_time_s") or 0) for r in records)
        firsts = [r["fold_seconds"][0] for r in records if r.get("fold_seconds")]
        following = sum(firsts) / len(firsts)
        allowed = self.runs * run.seconds
        complete = self.max_trials is not None and len(records) >= self.max_trials
        stop = spent + following > allowed and not complete
        write_json(Path(out) / "budget.json", {
            "budget_runs": self.runs, "run_estimate": {**asdict(run),
                                                       "seconds": round(run.seconds, 1)},
            "allowed_s": round(allowed, 1), "spent_s": round(spent, 1),
            "next_trial_s": round(following, 1), "trials": len(records),
            "stopped": stop, "max_trials_reached": complete})
        if stop:
            raise SearchBudgetReached()


def describe(out) -> str | None:
    """report.md's line on the budget (None without one)."""
    path = Path(out) / "budget.json"
    if not path.is_file():
        return None
    try:
        b = json.loads(path.read_text())
        run = b["run_estimate"]
    except (ValueError, KeyError) as err:
        raise InputError(f"{path} is damaged ({err!r}); rerun the same command "
                         "to write it again.") from err
    how = ("it stopped the search" if b["stopped"] else
           "max_trials ended the search" if b.get("max_trials_reached") else
           "the trials ended within it")
    return (f"Budget: the trials may use {b['budget_runs']:g} training runs' "
            f"worth of wall time; one run estimated at {run['seconds']:.0f} s "
            f"({run['steps']} optimizer steps at {run['step_s'] * 1000:.0f} ms, "
            f"plus {run['fixed_s']:.0f} s of building and tracing, from the first "
            f"fold of the first trial) = {b['allowed_s']:.0f} s; after "
            f"{b['trials']} trials ({b['spent_s']:.0f} s, the next expected to "
            f"take {b['next_trial_s']:.0f} s) {how}.")
