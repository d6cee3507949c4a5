"""Magnitude pruning (unstructured or m:n) of zoo models with TF-MOT."""

from __future__ import annotations


from . import bridge, finetune
from .options import (CompressionError, check_distribution, check_sparsity,
                                 check_structure)
from zoo.errors import InputError
from zoo.heads import classifier_name

PRUNABLE = ("Conv2D", "Dense", "SeparableConv2D")


def select_layers(model, *, skip_stem=True, skip_classifier=True, include=None,
                  exclude=()):
    """Names of the layers to prune or cluster.

    By default: every Conv2D, SeparableConv2D and Dense layer except the
    first convolution (the stem: few weights, much accuracy) and the
    classifier; depthwise kernels are never selected.  `include` (names)
    replaces the default choice; `exclude` removes names from it.
    """
    names = [layer.name for layer in model.layers]
    classifier = classifier_name(model) if skip_classifier else None
    if include is not None:
        unknown = sorted(set(include) - set(names))
        if unknown:
            raise InputError(f"No layer(s) named {', '.join(unknown)} in {model.name}.")
        return [n for n in names if n in set(include) - set(exclude)]
    chosen, seen_conv = [], False
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in PRUNABLE:
            continue
        if kind != "Dense" and not seen_conv:
            seen_conv = True
            if skip_stem:
                continue
        if layer.name == classifier:
            continue
        if layer.name not in exclude:
            chosen.append(layer.name)
    return chosen


def kernel_shape(layer):
    """Shape of the kernel TF-MOT prunes in a layer (a separable
    convolution's pointwise kernel)."""
    kernel = getattr(layer, "pointwise_kernel", None)
    if kernel is None:
        kernel = layer.kernel
    return tuple(int(d) for d in kernel.shape)


def layer_sparsities(shapes, sparsity, distribution="uniform"):
    """Per-layer target sparsity whose weighted mean over `shapes` ({name:
    kernel shape}) is `sparsity`.

    "uniform": every layer at `sparsity`. "erk" (Erdős–Rényi-Kernel, Evci
    et al. 2020, "Rigging the Lottery"): a layer's density is proportional
    to sum(shape) / prod(shape), so large layers (wide 1×1 convolutions,
    hidden dense layers) are pruned harder and small ones less; a layer
    whose density would exceed 1 stays dense (sparsity 0) and the others
    are solved again.
    """
    import math
    if check_distribution(distribution) == "uniform":
        return {name: sparsity for name in shapes}
    size = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / size[name] for name, shape in shapes.items()}
    dense = set()
    while True:
        kept = (1 - sparsity) * sum(size.values()) - sum(size[n] for n in dense)
        scale = kept / sum(raw[n] * size[n] for n in shapes if n not in dense)
        over = [n for n in shapes if n not in dense and raw[n] * scale > 1]
        if not over:
            break
        dense.add(max(over, key=raw.get))
    return {name: 0.0 if name in dense else 1 - raw[name] * scale for name in shapes}


def aligned_schedule(total_steps: int, frequency: int | None = None,
                     ramp: float = 0.6):
    """(begin, end, frequency) such that the last pruning step is `end`.

    TF-MOT updates masks only at steps where (step - begin) % frequency == 0,
    so an `end` that is not such a step leaves the final sparsity short of
    the target.  Sparsity ramps up over the first `ramp` of training (the
    rest recovers accuracy at the final sparsity); `end` is rounded down to a
    pruning step.
    """
    last = max(0, int(total_steps) - 1)
    if frequency is None:
        frequency = max(1, min(100, last // 20 or 1))
    begin = 0
    end = begin + frequency * (int(last * ramp) // frequency)
    if end == begin and last > begin:
        # Very short runs: prune at the last step rather than never ramping.
        frequency, end = 1, last
    return begin, end, frequency


DEFAULT_SPARSITY = 0.8


def _check_target(sparsity, structure, distribution, schedule):
    """prune()'s target, checked: (m:n or None, sparsity, distribution).
    m:n fixes the sparsity and prunes every layer alike, so a sparsity or a
    distribution beside it is refused, not ignored."""
    mn = check_structure(structure)
    if mn and (sparsity is not None or distribution is not None):
        raise CompressionError(f"structure {structure!r} fixes the sparsity at 1 - m/n "
                               "and prunes every layer alike; sparsity and "
                               "distribution would have no effect. Give structure "
                               "or them.")
    if not mn:
        sparsity = check_sparsity(DEFAULT_SPARSITY if sparsity is None else sparsity)
        distribution = check_distribution(distribution or "uniform")
    if schedule not in ("polynomial", "constant"):
        raise InputError(f"Unknown pruning schedule {schedule!r}; use polynomial "
                         "or constant.")
    return mn, sparsity, distribution


def prune(model, data, *, sparsity=None, structure=None, steps=None, epochs=None,
          learning_rate=finetune.LEARNING_RATE, schedule="polynomial",
          distribution=None, layers=None, exclude=(), verbose=0):
    """Prunes a Keras 3 model to `sparsity` (or m:n) and returns a Keras 3 model.

    The model is rebuilt under tf_keras (the input is never modified), the
    selected layers are wrapped with `prune_low_magnitude`, fine-tuned with
    `UpdatePruningStep`, stripped and rebuilt under Keras 3.

    Args:
        model: a zoo model (Keras 3).
        data: zoo.data.Data with `.train` (and `.val`) pipelines.
        sparsity: target fraction of zero weights in the pruned kernels
            (default DEFAULT_SPARSITY; refused with `structure`).
        distribution: "uniform" (default: each kernel at `sparsity`) or
            "erk" (larger kernels pruned harder, the same zeros in all;
            layer_sparsities); refused with `structure`.
        structure: None or "m:n" (e.g. "2:4": two non-zeros in every four
            consecutive input-channel weights).
        steps, epochs: the fine-tuning budget in optimizer steps or passes
            (default: compression.finetune.steps_for). Sparsity ramps up
            over the first 60 % of it; the rest recovers accuracy.
        schedule: "polynomial" (0 → sparsity over training, aligned with the
            pruning frequency) or "constant".
        layers, exclude: override the default layer choice (select_layers).

    Returns:
        (keras.Model, {"layers": {name: achieved sparsity}, ...})
    """
    mn, sparsity, distribution = _check_target(sparsity, structure, distribution,
                                               schedule)
    total = finetune.steps_for(data, "prune", steps=steps, epochs=epochs)
    import tensorflow_model_optimization as tfmot
    tfk = bridge.tf_keras_module()
    twin = bridge.to_tf_keras(model)
    chosen = select_layers(twin, include=layers, exclude=exclude)
    if not chosen:
        raise InputError(f"No prunable layer selected in {model.name}.")
    targets = layer_sparsities({n: kernel_shape(twin.get_layer(n)) for n in chosen},
                               sparsity, "uniform" if mn else distribution)
    begin, end, frequency = aligned_schedule(total)
    s = tfmot.sparsity.keras
    pruned = tfk.models.clone_model(twin, clone_function=_wrapper(
        s, targets, mn, schedule, begin, end, frequency))
    total = finetune.fit(pruned, tfk, data, total, learning_rate,
                         [s.UpdatePruningStep()], verbose=verbose)
    stripped = s.strip_pruning(pruned)
    result = bridge.to_keras(stripped, like=model)
    achieved = bridge.kernel_sparsity(stripped, chosen)
    info = {"layers": achieved, "target": 1 - mn[0] / mn[1] if mn else sparsity,
            "structure": f"{mn[0]}:{mn[1]}" if mn else None,
            "distribution": None if mn else distribution,
            "targets": None if mn else targets,
            "schedule": {"begin_step": begin, "end_step": end,
                         "frequency": frequency, "total_steps": total}}
    return result, info


def _wrapper(s, targets, mn, kind, begin, end, frequency):
    """The clone function that wraps each layer of `targets` ({name:
    sparsity}; those at 0 stay dense unless m:n) in `prune_low_magnitude`
    with its own schedule."""
    kwargs = {"sparsity_m_by_n": mn} if mn else {}

    def wrap(layer):
        if layer.name not in targets or not (mn or targets[layer.name] > 0):
            return layer
        return s.prune_low_magnitude(layer, pruning_schedule=_schedule(
            s, targets[layer.name], mn, kind, begin, end, frequency), **kwargs)
    return wrap


def _schedule(s, sparsity, mn, kind, begin, end, frequency):
    """TF-MOT's pruning schedule: constant for m:n, else polynomial (0 →
    sparsity) or constant."""
    steps = dict(begin_step=begin, end_step=end, frequency=frequency)
    if mn:
        return s.ConstantSparsity(1 - mn[0] / mn[1], **steps)
    if kind == "polynomial":
        return s.PolynomialDecay(0.0, sparsity, **steps)
    return s.ConstantSparsity(sparsity, **steps)


def check_m_by_n(kernel, m, n) -> bool:
    """True when every block of n consecutive input-channel weights has at most
    m non-zeros (TF-MOT's m:n layout: blocks along the input dimension)."""
    import numpy as np
    k = np.asarray(kernel)
    if k.ndim == 4:             # (kh, kw, in, out) -> (kh*kw*out, in)
        k = np.transpose(k, (0, 1, 3, 2)).reshape(-1, k.shape[2])
    else:                       # (in, out) -> (out, in)
        k = k.T
    if k.shape[1] % n:
        return False
    blocks = k.reshape(k.shape[0], -1, n)
    return bool(((blocks != 0).sum(-1) <= m).all())


__all__ = ["aligned_schedule", "check_m_by_n", "classifier_name",
           "kernel_shape", "layer_sparsities", "prune", "select_layers"]
