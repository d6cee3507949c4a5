"""Hyperparameter search over zoo models with keras-tuner."""
