"""Hyperparameter search over zoo models with keras-tuner.

Example:
    >>> from zoo import tuning       # or `import tuning` (the same folder)
    >>> result = tuning.search("resnet20", "digits", out="runs/tune")
    >>> result["test_accuracy"]      # the retrained best_model.keras
"""

from .search import (TUNERS, TrialRecorder, ZooHyperModel, pareto_front, report,
                           search)
from . import spaces

__all__ = ["TUNERS", "TrialRecorder", "ZooHyperModel", "pareto_front",
           "report", "search", "spaces"]
