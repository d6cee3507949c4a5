"""The length of a training run in optimizer steps (`budget`)."""

from __future__ import annotations

import math

from zoo.recipe import RECIPE

DEFAULT_EPOCHS = 10
# The floor on optimizer steps when --epochs is left to the default
# (docs/training.md, "Budgets in optimizer steps"): a 450-image training set
# at batch 32 gets 1,500 steps instead of 10 epochs × 15 steps.
DEFAULT_MIN_STEPS = RECIPE.min_steps


# An epoch of a small dataset is packed to at least this many optimizer
# steps (whole passes over the data), so per-epoch work (validation, the
# resume backup, the best-model checkpoint) stays a small share of the run.
MIN_EPOCH_STEPS = 50


def budget(num_train, batch_size, epochs=None, min_steps=DEFAULT_MIN_STEPS,
           drop_remainder=False):
    """(epochs, steps per epoch) of a run.

    An explicit `epochs` is honoured: that many passes over the data. Without
    one, a run gets DEFAULT_EPOCHS epochs or as many optimizer steps as
    `min_steps`, whichever is more; on a small dataset an epoch is then
    several whole passes (at least MIN_EPOCH_STEPS steps). With
    `drop_remainder` (multi-process runs) a pass has only whole batches.

    Example:
        >>> budget(450, 64)          # (18, 56): 7 passes an epoch, 1,008 steps
        >>> budget(54000, 64)        # (10, 844)
    """
    steps = max(1, num_train // batch_size if drop_remainder
                else math.ceil(num_train / batch_size))
    if epochs is not None:
        return int(epochs), steps
    if steps < MIN_EPOCH_STEPS:
        steps *= math.ceil(MIN_EPOCH_STEPS / steps)
    return max(DEFAULT_EPOCHS, math.ceil(min_steps / steps)), steps
