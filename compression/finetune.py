"""Fine-tuning of the tf_keras twins that TF-MOT wraps, with budgets in
optimizer steps.

Every compression step (pruning, clustering, QAT) trains for a number of
optimizer steps, not epochs: on a small dataset an epoch is a handful of
steps, too few for a pruned network to recover (issue #14 measured 16 steps
in all on a 500-image dataset). `steps_for` turns the caller's `steps` or
`epochs` into steps; without either a step gets its default floor or
MIN_PASSES passes over the training data (a preset may ask for more:
compression.presets), whichever is more.
docs/compression.md has the accuracy-vs-steps measurements behind the
defaults.
"""

from __future__ import annotations

import math

from .options import CompressionError, check_epochs
from zoo.heads import sparse_loss

MIN_PASSES = 2
# Adam's peak rate for pruning (clustering and QAT take a tenth), decayed to
# zero on a cosine over each step: measured on resnet20, docs/compression.md.
LEARNING_RATE = 3e-3
# Default optimizer steps of each fine-tuning step (see docs/compression.md).
DEFAULT_STEPS = {"prune": 1000, "cluster": 300, "qat": 300}


def steps_in(dataset) -> int:
    """Batches in one pass over a tf.data pipeline."""
    n = int(dataset.cardinality())
    if n < 0:
        n = sum(1 for _ in dataset)
    return max(1, n)


def steps_for(data, kind, *, steps=None, epochs=None, passes=MIN_PASSES) -> int:
    """Optimizer steps of one fine-tuning step: `steps`, else `epochs`
    passes, else max(DEFAULT_STEPS[kind], `passes` passes)."""
    if steps is not None and epochs is not None:
        raise CompressionError("Give the fine-tuning budget as steps or as epochs, "
                               "not both.")
    if steps is not None:
        return check_epochs(steps, "steps")
    per_pass = steps_in(data.train)
    if epochs is not None:
        return check_epochs(epochs) * per_pass
    return max(DEFAULT_STEPS[kind], check_epochs(passes, "passes") * per_pass)


def fit(model, tfk, data, steps, learning_rate, callbacks=(), verbose=0):
    """Compiles `model` (Adam, the sparse cross-entropy that fits its
    output: probabilities or logits, zoo.heads) and trains it for
    `steps` optimizer steps (rounded up to whole epochs of the repeated
    training data, validating at most 10 times along the way).

    The learning rate starts at `learning_rate` and decays to zero on a
    cosine over the run: a constant rate leaves the network where its last
    steps threw it (measured on resnet20, docs/compression.md). Returns the
    steps run."""
    per_pass = steps_in(data.train)
    epochs = max(1, min(10, math.ceil(steps / per_pass)))
    per_epoch = math.ceil(steps / epochs)
    epochs = math.ceil(steps / per_epoch)
    total = per_epoch * epochs
    schedule = tfk.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    model.compile(optimizer=tfk.optimizers.Adam(schedule),
                  loss=sparse_loss(model, tfk),
                  metrics=["accuracy"])
    model.fit(data.train.repeat(), validation_data=data.val, epochs=epochs,
              steps_per_epoch=per_epoch, callbacks=list(callbacks), verbose=verbose)
    return total
