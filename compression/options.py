"""Validation of compression options, before any model work."""

from __future__ import annotations

import dataclasses
import math
import numbers

from zoo.errors import InputError, check_positive_int

QUANTIZE_MODES = (None, "int8", "qat", "dynamic", "float16")
CENTROID_INITS = ("kmeans++", "linear", "density", "random")
DISTRIBUTIONS = ("uniform", "erk")      # how pruning's zeros spread over layers


class CompressionError(InputError):
    """Compression options or inputs that cannot work."""


@dataclasses.dataclass(frozen=True)
class CompressionOptions:
    """The options of one compress() run, validated once
    (`compression.pipeline.check_options`, before any model or data work)
    with the preset filled in under the explicit ones; the run, its
    resume fingerprint and its report read them from here.

    Attributes:
        preset: the preset's name or None.
        prune, distribution, structure: unstructured sparsity and how it
            spreads over layers, or m:n structure (as (m, n)); None: off.
        clusters, init: weight clusters per kernel and their initialisation.
        quantize: None, "int8", "qat", "dynamic" or "float16".
        steps, epochs, passes: each fine-tuning step's budget (the caller's
            steps or epochs, else `passes` over the training data at least).
        io: "float" or "int8" inputs and outputs of the LiteRT file.
        learning_rate: pruning's peak rate (a tenth for clustering and QAT).
    """

    preset: str | None
    prune: float | None
    distribution: str | None
    structure: str | None
    clusters: int | None
    init: str
    quantize: str | None
    steps: int | None
    epochs: int | None
    passes: int
    io: str
    learning_rate: float

    @property
    def trains(self) -> bool:
        """Whether any step fine-tunes the model."""
        return any(v is not None for v in (self.prune, self.structure, self.clusters)) \
            or self.quantize == "qat"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


MAX_CLUSTERS = 256


def check_sparsity(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or math.isnan(value) or not 0 < value < 1:
        raise CompressionError(f"Sparsity must be in (0, 1), e.g. 0.8; got {value!r}.")
    return float(value)


def check_structure(value):
    """'m:n' (m < n) → (m, n); None → None."""
    if value is None:
        return None
    text = str(value)
    parts = text.split(":")
    try:
        m, n = (int(p) for p in parts)
    except ValueError:
        raise CompressionError(f"Structure must be 'm:n' such as '2:4'; got {value!r}.") from None
    if not 0 < m < n:
        raise CompressionError(f"Structure m:n needs 0 < m < n; got {value!r}.")
    return m, n


def check_clusters(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise CompressionError(f"Clustering needs at least 2 clusters; got {value!r}.")
    if value > MAX_CLUSTERS:
        raise CompressionError(
            f"{value} clusters would not compress: clustering shrinks a model by "
            f"storing each kernel as at most {MAX_CLUSTERS} shared values (8-bit "
            f"indices), so use 2..{MAX_CLUSTERS} (16-32 is usual); got {value!r}.")
    return int(value)


def check_quantize(value):
    if value not in QUANTIZE_MODES:
        raise CompressionError(f"Unknown quantize mode {value!r}; use int8, qat, "
                               "dynamic, float16 or None.")
    return value


def check_init(value):
    if value not in CENTROID_INITS:
        raise CompressionError(f"Unknown centroid initialisation {value!r}; use one "
                               f"of {', '.join(CENTROID_INITS)}.")
    return value


def check_epochs(value, what="epochs"):
    """An integer >= 1 (epochs, latency runs, evaluation limit)."""
    return check_positive_int(value, what, CompressionError)


def check_distribution(value):
    if value not in DISTRIBUTIONS:
        raise CompressionError(f"Unknown sparsity distribution {value!r}; use "
                               f"{' or '.join(DISTRIBUTIONS)}.")
    return value


def check_learning_rate(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise CompressionError(f"Learning rate must be a number > 0; got {value!r}.")
    return float(value)
