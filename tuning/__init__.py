"""Hyperparameter search over zoo models with keras-tuner.

Example:
    >>> import tuning
    >>> result = tuning.search("resnet20", "digits", max_trials=10, out="runs/tune")
    >>> result["test_accuracy"]      # the retrained best_model.keras
"""

from tuning.search import (TUNERS, TrialRecorder, ZooHyperModel, pareto_front, report,
                           search)
from tuning import spaces

__all__ = ["TUNERS", "TrialRecorder", "ZooHyperModel", "pareto_front",
           "report", "search", "spaces"]
