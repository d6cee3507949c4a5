"""Hyperparameter search over zoo models with keras-tuner.

Example:
    >>> import tuning
    >>> result = tuning.search("resnet20", "digits", tuner="random",
    ...                        max_trials=4, epochs=2, out="runs/tune")
"""

from tuning.search import (TUNERS, TrialRecorder, ZooHyperModel, pareto_front, report,
                           search)
from tuning import spaces


def demo_step(out, metrics, quick):
    """`zoo demo`'s search: a short random search over optimizer settings."""
    from pathlib import Path
    result = search("resnet20", "digits", tuner="random", max_trials=2 if quick else 3,
                    epochs=1 if quick else 3, out=Path(out) / "tune", image_size=16,
                    limit=256 if quick else None,
                    space={"optimizer": {"values": ["adam", "nesterov", "rmsprop"]},
                           "learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
                           "regularizer": None, "augment": None, "dropout": None,
                           "label_smoothing": None, "schedule": {"value": "cosine"},
                           "batch_size": {"value": 64}, "depth": None})
    best = result.get("best_hyperparameters", {})
    text = (f"Search (random, {len(result['trials'])} trials): best validation "
            f"accuracy {result.get('best_score', float('nan')):.4f} with optimizer "
            f"{best.get('optimizer')} at learning rate {best.get('learning_rate', 0):.2g}. "
            f"Trials: `{Path(out) / 'tune' / 'trials.csv'}`.")
    return text, {"best_score": result.get("best_score"), "best": best}


__all__ = ["TUNERS", "TrialRecorder", "ZooHyperModel", "demo_step", "pareto_front",
           "report", "search", "spaces"]
