"""Hyperparameter search over zoo models with keras-tuner.

Example:
    >>> import tuning
    >>> result = tuning.search("resnet20", "digits", max_trials=10, out="runs/tune")
    >>> result["test_accuracy"]      # the retrained best_model.keras
"""

from tuning.search import (TUNERS, TrialRecorder, ZooHyperModel, pareto_front, report,
                           search)
from tuning import spaces


def demo_step(out, metrics, quick):
    """`zoo demo`'s search: a short random search over the focused space,
    then the best configuration retrained and tested."""
    from pathlib import Path
    # The demo's own short budgets: 100-step trials, a 1,000-step final run.
    budget = dict(epochs=1, folds=1, final_epochs=1, limit=256) if quick else \
        dict(trial_steps=100, final_steps=1000)
    result = search("resnet20", "digits", tuner="random", max_trials=2 if quick else 3,
                    out=Path(out) / "tune", image_size=16, compare_default=False,
                    space={"augment": None, "label_smoothing": None}, **budget)
    best = result.get("best_hyperparameters", {})
    text = (f"Search (random, {len(result['trials'])} trials): best validation "
            f"accuracy {result.get('best_score', float('nan')):.4f} with optimizer "
            f"{best.get('optimizer')} at learning rate {best.get('learning_rate', 0):.2g}; "
            f"retrained on train + validation: test accuracy "
            f"{result.get('test_accuracy', float('nan')):.4f}. "
            f"Report: `{Path(out) / 'tune' / 'report.md'}`.")
    return text, {"best_score": result.get("best_score"), "best": best,
                  "test_accuracy": result.get("test_accuracy")}


__all__ = ["TUNERS", "TrialRecorder", "ZooHyperModel", "demo_step", "pareto_front",
           "report", "search", "spaces"]
