"""Fine-tuning of the tf_keras twins that TF-MOT wraps, with budgets in
optimizer steps.

Every compression step (pruning, clustering, QAT) trains for a number of
optimizer steps, not epochs: on a small dataset an epoch is a handful of
steps, too few for a pruned network to recover (issue #14 measured 16 steps
in all on a 500-image dataset). `steps_for` turns the caller's `steps` or
`epochs` into steps; without either a step gets its default floor or
MIN_PASSES passes over the training data, whichever is more.
docs/compression.md has the accuracy-vs-steps measurements behind the
defaults.
"""

from __future__ import annotations

import math

from compression.options import CompressionError, check_epochs

MIN_PASSES = 2
# Default optimizer steps of each fine-tuning step (see docs/compression.md).
DEFAULT_STEPS = {"prune": 1000, "cluster": 300, "qat": 300}


def steps_in(dataset) -> int:
    """Batches in one pass over a tf.data pipeline."""
    n = int(dataset.cardinality())
    if n < 0:
        n = sum(1 for _ in dataset)
    return max(1, n)


def steps_for(data, kind, *, steps=None, epochs=None) -> int:
    """Optimizer steps of one fine-tuning step: `steps`, else `epochs`
    passes, else max(DEFAULT_STEPS[kind], MIN_PASSES passes)."""
    if steps is not None and epochs is not None:
        raise CompressionError("Give the fine-tuning budget as steps or as epochs, "
                               "not both.")
    if steps is not None:
        return check_epochs(steps, "steps")
    per_pass = steps_in(data.train)
    if epochs is not None:
        return check_epochs(epochs) * per_pass
    return max(DEFAULT_STEPS[kind], MIN_PASSES * per_pass)


def compile_model(model, tfk, learning_rate):
    model.compile(optimizer=tfk.optimizers.Adam(learning_rate),
                  loss=tfk.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"])


def fit(model, data, steps, callbacks=(), verbose=0):
    """Trains for exactly `steps` optimizer steps over the repeated training
    data, validating at most 10 times along the way."""
    per_pass = steps_in(data.train)
    epochs = max(1, min(10, math.ceil(steps / per_pass)))
    per_epoch = math.ceil(steps / epochs)
    epochs = math.ceil(steps / per_epoch)
    model.fit(data.train.repeat(), validation_data=data.val, epochs=epochs,
              steps_per_epoch=per_epoch, callbacks=list(callbacks), verbose=verbose)
    return per_epoch * epochs
