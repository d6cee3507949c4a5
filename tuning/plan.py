"""How each trial of a search is trained and scored: the trial budget in
optimizer steps and the validation scheme.

* **Budget.** A trial gets `steps_per_epoch × epochs` optimizer steps. An
  "epoch" of a search is a fixed number of steps, the same for every trial
  whatever its batch size, so that median stopping and Hyperband compare
  trials after equal work. Without an explicit budget a trial gets
  TRIAL_PASSES passes over its training data or TRIAL_MIN_STEPS steps,
  whichever is more (the floor scales with the dataset as `zoo train`'s
  does), in TRIAL_EPOCHS checkpoints.
* **Validation.** Below KFOLD_BELOW labelled images (training + validation),
  every trial is scored by stratified k-fold cross-validation (DEFAULT_FOLDS
  folds): its score is the mean over the folds, and every labelled image is
  scored once. Above it, or with `folds=1`, a stratified holdout of at least
  MIN_VALIDATION images (and at least 10 %) scores the trial. Hyperband
  continues trials from checkpoints and always uses the holdout.
* **Racing over folds** (successive halving in folds). Under k-fold, every
  trial trains on its first fold; it goes on to the other folds only if
  its first-fold score is among the FINALISTS best first-fold scores of the
  trials so far (the first FINALISTS trials always go on). A trial that
  does not is marked PRUNED and cannot be the best: the best trial is
  chosen among the trials scored on every fold. With 8 trials and one
  finalist, 1–2 trials train on all folds instead of 8 (docs/tuning.md,
  "Cost").

docs/tuning.md ("Budgets and validation") has the measurements behind the
numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from zoo.errors import InputError, check_positive_int

KFOLD_BELOW = 5000
DEFAULT_FOLDS = 3
MAX_FOLDS = 10
MIN_VALIDATION = 500
HOLDOUT_SPLIT = 0.1
TRIAL_MIN_STEPS = 150
TRIAL_PASSES = 3
TRIAL_EPOCHS = 6
FINALISTS = 1
# Trials of a default search (docs/tuning.md, "Cost").
MAX_TRIALS = 8


@dataclass(frozen=True)
class TrialPlan:
    """The budget and validation scheme every trial of one search shares.

    Attributes:
        folds: 1 (holdout) or k (k-fold cross-validation).
        validation_split: the holdout fraction (folds == 1).
        steps_per_epoch: optimizer steps between two checkpoints.
        epochs: checkpoints per trial (each one evaluates the validation data).
        num_labelled: training + validation images the search may use.
        scored_per_trial: validation images that score one trial.
        finalists: under k-fold, how many of the best first-fold scores
            send a trial on to its other folds (None: every trial).
    """

    folds: int
    validation_split: float
    steps_per_epoch: int
    epochs: int
    num_labelled: int
    scored_per_trial: int
    finalists: int | None = None

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def fold_ids(self):
        """The `fold` argument of zoo.data.load for each fold (None: holdout)."""
        return [None] if self.folds == 1 else [(i, self.folds) for i in range(self.folds)]

    def to_dict(self) -> dict:
        return {**asdict(self), "total_steps": self.total_steps}

    def describe(self) -> str:
        scheme = (f"{self.folds}-fold cross-validation" if self.folds > 1 else
                  f"a holdout of {self.scored_per_trial} images")
        race = (f"; a trial goes on past its first fold only with one of the "
                f"{self.finalists} best first-fold scores so far"
                if self.folds > 1 and self.finalists else "")
        return (f"each trial: {self.epochs} epochs × {self.steps_per_epoch} steps = "
                f"{self.total_steps} optimizer steps, scored by {scheme} "
                f"({self.scored_per_trial} of {self.num_labelled} labelled images)"
                f"{race}")


def holdout_split(num_labelled: int) -> float:
    """The holdout fraction: HOLDOUT_SPLIT, raised so that at least
    MIN_VALIDATION images validate (at most half of the data)."""
    return min(0.5, max(HOLDOUT_SPLIT, MIN_VALIDATION / max(1, num_labelled)))


def plan_trials(num_labelled, *, batch_size=64, folds=None, trial_steps=None,
                epochs=None, tuner="random", kfold_below=KFOLD_BELOW,
                limit=None, finalists=None) -> TrialPlan:
    """The TrialPlan of a search.

    Args:
        num_labelled: training + validation images.
        batch_size: the batch size used to count passes (the default of the
            space; trials with another batch size get the same steps).
        folds: None (automatic: DEFAULT_FOLDS below `kfold_below` labelled
            images, else 1), 1 (holdout) or k >= 2.
        trial_steps: optimizer steps per trial; None: at least
            TRIAL_MIN_STEPS and TRIAL_PASSES passes.
        epochs: None, or passes over the training data per trial (as
            `zoo train --epochs`: honoured exactly, one checkpoint a pass).
        tuner: "hyperband" uses a holdout.
        limit: at most this many training images per trial (quick runs;
            the validation part is not limited).
        finalists: None (FINALISTS under k-fold), 0 (every trial runs every
            fold) or K >= 1; only under k-fold (refused with a holdout).

    Example:
        >>> plan_trials(1437).describe()      # scikit-learn digits
        'each trial: 6 epochs × 50 steps = 300 optimizer steps, scored by 3-fold ...'
    """
    check_positive_int(num_labelled, "num_labelled")
    for value, name in ((trial_steps, "trial_steps"), (epochs, "epochs")):
        if value is not None:
            check_positive_int(value, name)
    if trial_steps is not None and epochs is not None:
        raise InputError("Give the trial budget as epochs or as trial_steps, not both.")
    if folds is not None:
        check_positive_int(folds, "folds")
        if folds > MAX_FOLDS:
            raise InputError(f"folds must be at most {MAX_FOLDS}; got {folds}.")
        if folds > 1 and tuner == "hyperband":
            raise InputError("Hyperband continues trials from their checkpoints and "
                             "scores them on a holdout; use folds 1 with it, or "
                             "another tuner for k-fold cross-validation.")
    if folds is None:
        folds = DEFAULT_FOLDS if num_labelled < kfold_below and tuner != "hyperband" \
            else 1
    finalists = check_finalists(finalists, folds)
    split = holdout_split(num_labelled) if folds == 1 else 0.0
    num_train = num_labelled * (folds - 1) // folds if folds > 1 \
        else num_labelled - math.ceil(split * num_labelled)
    if limit:
        num_train = min(num_train, limit)
    per_pass = max(1, math.ceil(num_train / batch_size))
    if epochs is not None:
        steps, count = per_pass, epochs
    else:
        total = trial_steps or max(TRIAL_MIN_STEPS, TRIAL_PASSES * per_pass)
        count = min(TRIAL_EPOCHS, total)
        steps = math.ceil(total / count)
    scored = num_labelled if folds > 1 else math.ceil(split * num_labelled)
    return TrialPlan(folds=folds, validation_split=split, steps_per_epoch=steps,
                     epochs=count, num_labelled=num_labelled, scored_per_trial=scored,
                     finalists=finalists)


def check_finalists(finalists, folds):
    """The plan's `finalists`: FINALISTS by default under k-fold, None
    (every trial runs every fold) for 0 or a holdout. `folds` None (not
    known yet): the value alone is checked."""
    if finalists is None:
        return FINALISTS if folds is not None and folds > 1 else None
    if isinstance(finalists, bool) or not isinstance(finalists, int) or finalists < 0:
        raise InputError(f"finalists must be an integer >= 0 (0: every trial runs "
                         f"every fold); got {finalists!r}.")
    if folds is None:
        return finalists or None
    if folds == 1:
        raise InputError("finalists races the trials over the folds of k-fold "
                         "cross-validation; this search scores trials on a holdout "
                         "(folds 1), where it would have no effect. Drop it, or "
                         "use folds >= 2.")
    return finalists or None


def standard_error(scores, scored, objective):
    """The standard error of a trial's score: for an accuracy, the binomial
    error over the `scored` validation images; for other objectives, the
    spread of the fold scores (None with a single fold)."""
    if not scores:
        return None
    mean = sum(scores) / len(scores)
    if "accuracy" in objective and scored:
        return math.sqrt(max(0.0, mean * (1 - mean)) / scored)
    if len(scores) < 2:
        return None
    var = sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)
    return math.sqrt(var / len(scores))
