"""The training recipe, defined once: what `zoo train` from scratch,
`--fine-tune`'s second phase, the search's final retraining and `zoo demo`
use for every setting the user leaves out.

Measured in docs/training.md ("The recipe"); where a path must differ, the
difference is a named field here (`fine_tune_lr`), not a second recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """Defaults of a training run.

    Attributes:
        min_steps: floor on optimizer steps when the epochs are left to the
            default (1,500: measured against 1,000 in docs/training.md,
            "The step floor").
        min_image_size: when the image size is left out, images whose
            shorter side is below this are resized up (aspect kept) so that
            it is this: a CIFAR-form network divides its input by 4, and at
            8×8 its last stage sees 2×2 (measured in docs/training.md,
            "The image-size floor").
        batch_size: images per optimizer step.
        augment: augmentation preset (zoo.augment): "light_erasing" is
            translation and Keras' RandomErasing, no flip: safe for digits,
            text, medical and industrial images; a horizontal flip
            ("natural") only where the user asks for it.
            `--fine-tune`'s second phase uses it too (measured in
            docs/transfer.md, "Measured: augmentation in `--fine-tune`").
        validation_split: the fraction held out to choose the kept epoch,
            when that fraction holds at least `min_val_for_best` images.
        min_val_for_best: the validation images below which the best epoch
            is not trusted: the run keeps its last epoch (the schedule has
            decayed to zero) instead of the epoch that scored best on a
            split whose standard error is several points. A split left to
            the recipe is not held out at all then: every labelled image
            trains (measured in docs/training.md, "Training on all labelled
            images").
        lr: the peak rate from scratch by optimizer (zoo.optim.DEFAULT_LR
            takes these; other optimizers keep their own).
        label_smoothing: of the cross-entropy loss.
        schedule: the learning-rate schedule (zoo.optim.SCHEDULES):
            "warmup_linear" is a linear warm-up, then a straight line to 0
            (measured against the half cosine, "warmup_cosine", in
            docs/training.md, "Linear decay"); `--fine-tune`'s second phase
            uses it too.
        fine_tune_lr: the peak rate of `--fine-tune`'s second phase by
            optimizer (others use the optimizer's default rate).
    """

    min_steps: int = 1500
    min_image_size: int = 16
    batch_size: int = 32
    augment: str = "light_erasing"
    validation_split: float = 0.1
    min_val_for_best: int = 1000
    lr: dict = field(default_factory=lambda: {"adam": 3e-3, "adamw": 3e-3})
    label_smoothing: float = 0.1
    schedule: str = "warmup_linear"
    fine_tune_lr: dict = field(default_factory=lambda: {"adam": 3e-3, "adamw": 3e-3})

    def selection(self, num_val: int) -> str:
        """"best" (restore the epoch that scored best on validation) or
        "last" (keep the final weights) for a validation split of
        `num_val` images."""
        return "best" if num_val >= self.min_val_for_best else "last"

    def holdout(self, num_labelled: int) -> float:
        """The validation fraction for `num_labelled` training images when
        the user leaves it out: `validation_split` when it holds enough
        images to choose an epoch by, else 0 (all images train, the last
        epoch is kept)."""
        n_val = math.ceil(self.validation_split * num_labelled)
        return self.validation_split if n_val >= self.min_val_for_best else 0.0


RECIPE = Recipe()
SELECTIONS = ("best", "last")
