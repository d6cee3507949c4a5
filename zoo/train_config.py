"""`TrainConfig`: everything that defines a training run (saved as
config.json), its checks (all made before any data is read or process
started) and the derived values a run reads (learning rate, augmentation,
selection)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import keras

from zoo import data as data_lib
from zoo import factory, registry, transfer
from zoo import weights as weights_lib
from zoo.errors import InputError, ZooError, check_positive_int, check_seed
from zoo.input_pipeline import image_hw
from zoo.optim import (DEFAULT_LR, FINE_TUNE_LR, OPTIMIZER_KNOBS, SCHEDULES,
                       WARMUP_SCHEDULES, check_optimizer)
from zoo.recipe import RECIPE, SELECTIONS


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = (None, "mirrored")


# The recipe's floors: the option beside which each has no effect, and what
# it is the floor on.
FLOORS = {"min_steps": ("epochs", "optimizer steps when the epochs are left to the "
                        "default"),
          "min_image_size": ("image_size", "the image size when none is given")}


def check_floor(floor, value, given):
    """A floor of FLOORS: an integer >= 1, refused beside its option given."""
    check_positive_int(value, floor)
    option, what = FLOORS[floor]
    if given is not None:
        raise InputError(f"{floor}={value} is the floor on {what}; with "
                         f"{option}={given} it would have no effect. Give "
                         "one of them.")


class TrainingError(ZooError, RuntimeError):
    """Training ran but could not produce a usable model."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as config.json).

    Attributes:
        model: registry name.
        dataset: data source (see zoo.data.load).
        optimizer: sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw.
        epochs: None (default): DEFAULT_EPOCHS epochs, or more on a small
            dataset so that the run has at least `min_steps` optimizer steps
            (see `budget`); an explicit number is honoured.
        min_steps: the floor on optimizer steps when `epochs` is None.
        lr: peak learning rate; default per optimizer (0.1 for SGD family,
            0.01 Adagrad, 1e-3 otherwise).
        schedule: constant | step (×0.1 at 50 % and 75 %) | cosine |
            warmup_cosine (linear warm-up, then cosine decay to 0) |
            warmup_linear (linear warm-up, then linear decay to 0);
            default: the recipe's (RECIPE.schedule, warmup_linear).
        warmup_epochs: the warm-up of warmup_cosine and warmup_linear;
            None: one epoch, at most a tenth of the run; a number is
            honoured (fewer than the epochs).
        momentum, rho, beta_1, beta_2, epsilon: the optimizer's own knobs
            (None: Keras' defaults, momentum 0.9); one the optimizer does not
            have is refused, not ignored.
        weight_decay: decoupled weight decay of the Keras optimizer.
        label_smoothing: for the cross-entropy loss.
        regularizer, dropout, drop_path, width_multiplier (MobileNets):
            passed to create_model.
        precision: float32 | mixed_bfloat16 (CPUs with bf16 units) |
            mixed_float16 (GPUs).
        jit_compile: XLA compilation of the train step.
        strategy: None or "mirrored" (all local GPUs, else all local CPUs).
        patience: early-stopping patience in epochs (None: off).
        augment: augmentation preset; None: the recipe's (zoo.recipe:
            its `augment`, from scratch and with fine_tune).
        selection: "best" (the epoch that scored best on validation) or
            "last" (the final weights); None: the recipe's rule, "best"
            only with at least RECIPE.min_val_for_best validation images.
        image_size: resize the images to this (None: as stored, up to
            `min_image_size`).
        min_image_size: with `image_size` left out, images whose shorter
            side is below this are resized up to it (the recipe's floor,
            RECIPE.min_image_size; docs/training.md).
        validation_split: the fraction of the training images held out;
            None: the recipe's (RECIPE.holdout): 0.1 when that is at least
            RECIPE.min_val_for_best images, else none, every labelled image
            trains and the last epoch is kept.
        fine_tune: LP-FT from `weights` (zoo.transfer.fine_tune): new head
            unless `keep_head`, linear probe, then every layer trained,
            the backbone at `backbone_lr_factor` × lr, BatchNormalization
            per `bn` ("auto" | "train" | "freeze").
    """

    model: str
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int | None = None
    min_steps: int = RECIPE.min_steps
    batch_size: int = RECIPE.batch_size
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    rho: float | None = None
    beta_1: float | None = None
    beta_2: float | None = None
    epsilon: float | None = None
    schedule: str = RECIPE.schedule
    warmup_epochs: int | None = None
    weight_decay: float = 0.0
    label_smoothing: float = RECIPE.label_smoothing
    regularizer: str | None = None
    dropout: float | None = None
    drop_path: float = 0.0
    width_multiplier: float | None = None
    augment: str | None = None
    selection: str | None = None
    weights: str | None = None
    fine_tune: bool = False
    keep_head: bool = False
    bn: str = "auto"
    backbone_lr_factor: float = 1.0
    image_size: int | None = None
    min_image_size: int = RECIPE.min_image_size
    channels: int | None = None
    num_classes: int | None = None
    validation_split: float | None = None
    preprocessing: str = "unit"
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str | None = None
    seed: int = 0
    patience: int | None = None
    tensorboard: bool = False
    limit: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def augmentation(self) -> str:
        """The preset this run uses (`augment`, else the recipe's)."""
        return self.augment if self.augment is not None else RECIPE.augment

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.fine_tune and self.optimizer in FINE_TUNE_LR:
            return FINE_TUNE_LR[self.optimizer]
        return DEFAULT_LR[self.optimizer]

    def images_line(self, info) -> str:
        """What the run trains on, as it prints it: the split sizes, and the
        size the recipe's floor resized the images up to."""
        line = f"images: {info.num_train:,} training, {info.num_val:,} validation"
        if self.validation_split is None and not info.num_val:
            line += (f" (the recipe holds none out when {RECIPE.validation_split:.0%} "
                     f"would be under {RECIPE.min_val_for_best:,} images; the last "
                     "epoch is kept)")
        (h, w), stored = info.image_shape[:2], tuple(info.source_shape[:2])
        if self.image_size is None and (h, w) != stored:
            line += (f"; at {h}×{w}, resized up from {stored[0]}×{stored[1]} (the "
                     f"recipe's floor, --min-image-size {self.min_image_size})")
        return line

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def changed_from(self, saved, source_hw=None) -> list:
        """The fields in which a saved config.json's dict differs from this
        configuration (`extra` aside, `min_steps` when both give the same
        epochs and `min_image_size` when both give the same image size —
        the same explicit one, or the same floor's size of images stored at
        `source_hw`: they have no effect then); ["config.json"] if it is no
        dict."""
        if not isinstance(saved, dict):
            return ["config.json"]
        mine = json.loads(json.dumps(self.to_dict()))      # tuples as saved
        if "min_image_size" not in saved and saved.get("image_size") is None:
            saved = {**saved, "min_image_size": 1}      # before the floor: as stored
        ignore = {"extra"}
        if self.epochs is not None and saved.get("epochs") == self.epochs:
            ignore.add("min_steps")
        if self.image_size is not None and saved.get("image_size") == mine["image_size"]:
            ignore.add("min_image_size")
        if self.image_size is None and saved.get("image_size") is None \
                and source_hw is not None and isinstance(saved["min_image_size"], int) \
                and image_hw(None, source_hw, saved["min_image_size"]) \
                == image_hw(None, source_hw, self.min_image_size):
            ignore.add("min_image_size")
        return sorted(k for k in (set(mine) | set(saved)) - ignore
                      if saved.get(k) != mine.get(k))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"Unknown config key(s): {', '.join(unknown)}.")
        if d.get("epochs") is not None:
            # The floor has no effect with explicit epochs: a file written
            # when the recipe's floor was another number repeats its run.
            d = {k: v for k, v in d.items() if k != "min_steps"}
        if d.get("image_size") is not None:
            d = {k: v for k, v in d.items() if k != "min_image_size"}
        elif "min_image_size" not in d:
            # Written before the recipe had an image-size floor: as stored.
            d = {**d, "min_image_size": 1}
        return cls(**d)

    def _check_knobs_apply(self):
        """An optimizer knob the chosen optimizer does not have is refused
        (docs/errors.md: an option without effect is not ignored)."""
        if self.epsilon is not None and (isinstance(self.epsilon, bool) or not isinstance(
                self.epsilon, (int, float)) or not self.epsilon > 0):
            raise InputError(f"epsilon must be a number > 0; got {self.epsilon!r}.")
        for knob, users in OPTIMIZER_KNOBS.items():
            if getattr(self, knob) is not None and self.optimizer not in users:
                raise InputError(
                    f"{knob} has no effect with the {self.optimizer} optimizer (it is a "
                    f"knob of {', '.join(users)}); drop it or choose one of those.")

    def _check_warmup(self):
        """warmup_epochs: None (one epoch, at most a tenth of the run), or an
        explicit number that the warm-up schedules honour."""
        w = self.warmup_epochs
        if w is None:
            return
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise InputError(f"warmup_epochs must be an integer >= 0; got {w!r}.")
        if self.schedule not in WARMUP_SCHEDULES:
            raise InputError(f"warmup_epochs has no effect with the {self.schedule} "
                             "schedule; use --schedule warmup_linear (or "
                             "warmup_cosine) or drop it.")
        if self.epochs is not None and w >= self.epochs:
            raise InputError(f"warmup_epochs ({w}) must be fewer than the run's "
                             f"epochs ({self.epochs}).")

    def _check_selection(self):
        if self.selection not in (None, *SELECTIONS):
            raise InputError(f"selection must be one of {', '.join(SELECTIONS)} (or "
                             f"None: the recipe's rule); got {self.selection!r}.")
        if self.selection == "best" and self.validation_split == 0:
            raise InputError("selection 'best' has no effect without a validation "
                             "split (validation_split 0): there is no validation "
                             "score to choose an epoch by.")

    def check_validation_size(self, num_val: int):
        """After the data is read: "best" needs validation images to choose by."""
        if self.selection == "best" and not num_val:
            raise InputError(
                "selection 'best' needs a validation split, and this run holds out "
                f"none: {RECIPE.validation_split:g} of its labelled images would be "
                f"fewer than {RECIPE.min_val_for_best:,}, so the recipe trains on all "
                "of them (zoo.recipe). Pass validation_split (--validation-split "
                f"{RECIPE.validation_split:g}) or drop selection.")

    def _check_transfer(self):
        if self.fine_tune and not self.weights:
            raise InputError("fine_tune needs pretrained weights (--weights TAG|PATH).")
        if self.keep_head and not self.fine_tune:
            raise InputError("keep_head applies to fine-tuning; add --fine-tune.")
        unused = [f"{name}={value!r}" for name, value, default in (
            ("bn", self.bn, "auto"),
            ("backbone_lr_factor", self.backbone_lr_factor, 1.0)) if value != default]
        if unused and not self.fine_tune:
            raise InputError(f"{', '.join(unused)} set(s) how --fine-tune trains the "
                             "pretrained backbone and would have no effect without "
                             "it; add --fine-tune --weights TAG|PATH or drop it.")
        weights_lib.check_available(self.model, self.weights)

    def _check_budget(self):
        """epochs, the recipe's floors (min_steps, min_image_size: without
        effect beside epochs and image_size) and the batch."""
        if self.epochs is not None:
            check_positive_int(self.epochs, "epochs")
        for floor, (option, _) in FLOORS.items():
            value, given = getattr(self, floor), getattr(self, option)
            # The recipe's own value is the default, not a choice.
            check_floor(floor, value, None if value == getattr(RECIPE, floor) else given)
        check_positive_int(self.batch_size, "batch_size")

    def validate(self) -> "TrainConfig":
        """Checks every field; raises ValueError naming the bad one."""
        registry.get_entry(self.model)
        data_lib.check_source(self.dataset, self.data_dir)
        check_optimizer(self.optimizer)
        if self.schedule not in SCHEDULES:
            raise InputError(f"Unknown schedule {self.schedule!r}; use one of "
                             f"{', '.join(SCHEDULES)}.")
        self._check_budget()
        check_seed(self.seed)
        self._check_selection()
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) \
                or not lr > 0 or math.isinf(lr):
            raise InputError(f"Learning rate must be > 0; got {lr!r}.")
        for name in ("momentum", "rho", "beta_1", "beta_2", "label_smoothing"):
            v = getattr(self, name)
            if v is None and name != "label_smoothing":
                continue
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise InputError(f"{name} must be in [0, 1); got {v!r}.")
        self._check_knobs_apply()
        if not isinstance(self.weight_decay, (int, float)) or not self.weight_decay >= 0:
            raise InputError(f"weight_decay must be >= 0; got {self.weight_decay!r}.")
        if self.precision not in PRECISIONS:
            raise InputError(f"Unknown precision {self.precision!r}; use one of "
                             f"{', '.join(PRECISIONS)}.")
        backend = keras.backend.backend()
        if backend != "tensorflow" and self.strategy:
            raise InputError(f"--strategy {self.strategy} is tf.distribute, TensorFlow "
                             f"only; this process runs Keras on {backend}. For "
                             "data-parallel training on JAX use --processes N "
                             "(docs/distributed.md).")
        if backend != "tensorflow" and self.jit_compile:
            raise InputError("--jit turns on XLA for TensorFlow's train step; the "
                             f"{backend} backend compiles on its own (leave --jit out).")
        if self.strategy not in STRATEGIES:
            raise InputError(f"Unknown strategy {self.strategy!r}; use 'mirrored' "
                             "or None. (Keras 3 fit does not run under "
                             "MultiWorkerMirroredStrategy, keras#20585.)")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")
        self._check_warmup()
        if self.limit is not None:
            check_positive_int(self.limit, "limit")
        self._check_transfer()

        if self.bn not in transfer.BN_POLICIES:
            raise InputError(f"Unknown bn policy {self.bn!r}; use one of "
                             f"{', '.join(transfer.BN_POLICIES)}.")
        f = self.backbone_lr_factor
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise InputError(f"backbone_lr_factor must be in (0, 1]; got {f!r}.")
        factory.parse_regularizer(self.regularizer)
        return self
