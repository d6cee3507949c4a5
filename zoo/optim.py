"""Optimizers and learning-rate schedules by name, with their defaults.

`make_optimizer("nesterov", 0.1, weight_decay=5e-4)`, `make_schedule(
"warmup_linear", 1e-3, total_steps, warmup_steps)`; the names, the
optimizers' own knobs and the default rates are declared here once, for
`zoo.training`, `zoo.transfer` and the search spaces.
"""

from __future__ import annotations

import keras

from zoo.errors import InputError, did_you_mean
from zoo.recipe import RECIPE

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "warmup_cosine", "warmup_linear")
# The schedules that honour a warm-up (TrainConfig.warmup_epochs).
WARMUP_SCHEDULES = ("warmup_cosine", "warmup_linear")
# The optimizer knobs of TrainConfig and the optimizers that have them.
OPTIMIZER_KNOBS = {"momentum": ("momentum", "nesterov"), "rho": ("rmsprop",),
                   "beta_1": ("adam", "adamw"), "beta_2": ("adam", "adamw"),
                   "epsilon": ("rmsprop", "adam", "adamw")}
# The peak rate from scratch by optimizer: the recipe's where it has one
# (Adam and AdamW, measured in docs/training.md), else the usual rate.
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.01,
              "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3, **RECIPE.lr}
# The peak learning rate of `--fine-tune` (LP-FT phase 2) with Adam/AdamW:
# measured in docs/transfer.md ("Choosing the defaults"); other optimizers
# use DEFAULT_LR.
FINE_TUNE_LR = RECIPE.fine_tune_lr


@keras.saving.register_keras_serializable("zoo")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then a straight
    line down to 0 at `total_steps` (the schedule of "Budgeted training",
    Li et al. 2020; measured against warmup_cosine in docs/training.md,
    "Linear decay")."""

    def __init__(self, peak, total_steps, warmup_steps):
        super().__init__()
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        up = self.peak * step / max(self.warmup_steps, 1)
        left = (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
        return ops.where(step < self.warmup_steps, up, self.peak * ops.maximum(0.0, left))

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def check_optimizer(name):
    if name not in OPTIMIZERS:
        hint = did_you_mean(name, OPTIMIZERS, n=2)
        raise InputError(f"Unknown optimizer {name!r}.{hint} Use one of "
                         f"{', '.join(OPTIMIZERS)}.")
    return name


def make_schedule(name, lr, total_steps, warmup_steps=0, max_warmup=0.1):
    """A Keras learning-rate schedule (or a float for "constant").

    warmup_cosine and warmup_linear warm up for `warmup_steps`, at most
    `max_warmup` of the run (None: as asked, short of the whole run), then
    decay to 0 along a half cosine or a straight line."""
    schedules = keras.optimizers.schedules
    total_steps = max(1, int(total_steps))
    # By default warm-up never takes more than a tenth of the run (none in a
    # run of fewer than 10 steps).
    cap = total_steps - 1 if max_warmup is None else int(total_steps * max_warmup)
    warmup_steps = max(0, min(int(warmup_steps), cap))
    if name == "warmup_linear":
        return WarmupLinearDecay(lr, total_steps, warmup_steps)
    if name == "constant":
        return float(lr)
    if name == "step":
        bounds = [max(1, total_steps // 2), max(2, total_steps * 3 // 4)]
        return schedules.PiecewiseConstantDecay(bounds, [lr, lr * 0.1, lr * 0.01])
    if name == "cosine":
        return schedules.CosineDecay(lr, decay_steps=total_steps)
    if name == "warmup_cosine":
        if warmup_steps < 1:
            return schedules.CosineDecay(lr, decay_steps=total_steps)
        return schedules.CosineDecay(0.0, decay_steps=total_steps - warmup_steps,
                                     warmup_target=lr, warmup_steps=warmup_steps)
    raise InputError(f"Unknown schedule {name!r}; use one of {', '.join(SCHEDULES)}.")


def build_for_fit(model, dataset):
    """Creates every variable of a compiled model (its metrics' and its
    optimizer's) from the element spec of `dataset` (nothing is read from
    it), before `fit` traces its training step. Keras' TensorFlow trainer
    otherwise creates them inside the first trace, which makes tf.function
    trace the whole step a second time (keras/src/backend/tensorflow/
    trainer.py defers this build when no distribution strategy is set): one
    trace less per fit, about 1 s for resnet20 on 2 cores
    (tests/test_training.py counts the traces). Keras' own pre-build
    (`_symbolic_build`, what it runs under a distribution strategy); skipped
    if a Keras version lacks it."""
    build = getattr(model, "_symbolic_build", None)
    # Under a tf.distribute strategy Keras builds them itself, in its scope.
    deferred = getattr(model, "_distribute_strategy", None) is None
    if keras.backend.backend() == "tensorflow" and build is not None and deferred:
        build(data_batch=dataset.element_spec)


def make_optimizer(name, learning_rate, *, weight_decay=0.0, momentum=0.9,
                   rho=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                   clipnorm=None):
    """A Keras optimizer by name, with its own knobs.

    Args:
        name: sgd (plain) | momentum | nesterov | adagrad | rmsprop | adam |
            adamw.
        learning_rate: float or a Keras schedule.
        weight_decay: decoupled weight decay; every Keras optimizer applies
            it as `w -= lr * weight_decay * w` (0 turns it off).

    Example:
        >>> make_optimizer("nesterov", 0.1, weight_decay=5e-4)
    """
    check_optimizer(name)
    opt = keras.optimizers
    common = dict(learning_rate=learning_rate, clipnorm=clipnorm,
                  weight_decay=weight_decay or None)
    if name == "sgd":
        return opt.SGD(**common)
    if name in ("momentum", "nesterov"):
        return opt.SGD(momentum=momentum, nesterov=name == "nesterov", **common)
    if name == "adagrad":
        return opt.Adagrad(**common)
    if name == "rmsprop":
        return opt.RMSprop(rho=rho, momentum=0.0, epsilon=epsilon, **common)
    if name == "adam":
        return opt.Adam(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **common)
    common["weight_decay"] = weight_decay
    return opt.AdamW(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **common)
