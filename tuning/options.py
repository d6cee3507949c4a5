"""search()'s arguments that need no data, each checked with the reason:
the tuner, the objectives and the final retraining's options."""

from __future__ import annotations

from . import spaces
from zoo.errors import InputError, check_positive_int, did_you_mean, require

TUNERS = ("random", "bayesian", "hyperband", "grid")
MODEL_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
EXTRA_OBJECTIVES = ("params", "latency")


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


def check_tuner(kind):
    if kind not in TUNERS:
        raise InputError(f"Unknown tuner {kind!r}.{did_you_mean(kind, TUNERS)} "
                         f"Use one of {', '.join(TUNERS)}.")
    if kind == "bayesian":
        require("sklearn", "The bayesian tuner needs scikit-learn: "
                           "pip install scikit-learn.")


def final_options(retrain, epochs, steps, augment, compare_default,
                  confirm=True) -> dict:
    """The final retraining's options, checked (confirm: the confirmation of
    a switch, which runs only before a final retraining)."""
    for value, what in ((epochs, "final_epochs"), (steps, "final_steps")):
        if value is not None:
            check_positive_int(value, what)
    given = [name for name, value in (("final_epochs", epochs), ("final_steps", steps),
                                      ("final_augment", augment)) if value is not None]
    if compare_default:
        given.append("compare_default=True")
    if not confirm:
        given.append("confirm=False (--no-confirm)")
    if not retrain and given:
        raise InputError(f"{', '.join(given)} set the final retraining, which "
                         "retrain=False (--no-retrain) skips: they would have no "
                         "effect. Drop them or the retrain=False.")
    if epochs is not None and steps is not None:
        raise InputError("Give the final retraining's budget as final_epochs or "
                         "final_steps (--final-epochs, --final-steps), not both: "
                         "one would replace the other.")
    if augment is not None and augment not in spaces.AUGMENTS:
        raise InputError(f"final_augment must be one of {', '.join(spaces.AUGMENTS)}; "
                         f"got {augment!r}.")
    return {"retrain": retrain, "epochs": epochs, "steps": steps, "augment": augment,
            "compare_default": compare_default}
