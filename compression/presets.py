"""Named compression recipes (`zoo compress MODEL --preset NAME`,
`compression.compress(..., preset=NAME)`).

* **deep** — Deep Compression's chain: magnitude pruning to 90 % of the
  pruned layers' weights on a polynomial schedule, spread over the layers
  by size (ERK: larger kernels pruned harder, compression.prune.
  layer_sparsities) → sparsity-preserving weight clustering to 8 shared
  values → full-integer int8 LiteRT (post-training: per-channel symmetric
  int8 keeps every zero and at most 8 values per channel). The smallest
  file. The values come from the measured curve (docs/benchmarks.md, "Deep
  compression"): at 80 % uniform sparsity 8, 16 and 32 clusters end at the
  same accuracy and 8 is the smallest; ERK at 90 % is 19–28× (resnet20,
  alexnet_cifar) and 11× (MobileNetV2 0.5) for 0.2–1.6 points, where
  uniform 80 % is 9–17× for 0.1–1.2, and uniform 90 % empties channels of
  MobileNetV2's narrow layers (its int8 file fell to 0.55). TF-MOT's
  prune-and-cluster-preserving QAT (PCQAT) is `quantize="qat"` after the
  same steps, but not the default: TF-MOT 0.8.1 shares one weight quantizer
  among all Conv2D layers and switches its sparsity preservation off at the
  first kernel without zeros (the unpruned stem), so the pruned zeros drift
  during QAT (measured: a kernel pruned to 80 % held 20 % zeros in the
  file at QAT learning rate 1e-4) — docs/compression.md.
* **balanced** — pruning → int8 post-training quantization: one fine-tuning
  step.
* **fast** — int8 post-training quantization only: no training, a minute.
* **structured** — 2:4 structured sparsity (two non-zeros in every four
  input-channel weights, the layout sparse tensor cores run) → int8.

Each step's fine-tuning budget is in optimizer steps: at least
compression.finetune.DEFAULT_STEPS and two passes over the training data,
four for deep (90 % of the weights take them back: resnet20 on 54,000
Fashion-MNIST images was 0.9155 after pruning over two passes, 0.9276 over
four). docs/benchmarks.md has the accuracy/size curve (sparsity 50–90 %,
uniform or ERK, 8–32 clusters, two or four passes) the deep values were
chosen from, with its commands; the balanced and structured values are not
measured on such a curve.
"""

from __future__ import annotations

from . import finetune
from .options import CompressionError

PRESETS = {
    "deep": {"prune": 0.9, "distribution": "erk", "clusters": 8, "quantize": "int8",
             "passes": 4},
    "balanced": {"prune": 0.7, "quantize": "int8"},
    "fast": {"quantize": "int8"},
    "structured": {"structure": "2:4", "quantize": "int8"},
}


def resolve(preset, *, prune=None, structure=None, clusters=None,
            quantize="auto", distribution=None) -> dict:
    """The preset's options under the explicit ones (those not None;
    quantize "auto" takes the preset's, else "int8"), with the least number
    of passes over the training data each fine-tuning step takes when its
    budget is not given (the preset's, else finetune.MIN_PASSES)."""
    if preset is not None and preset not in PRESETS:
        raise CompressionError(f"Unknown preset {preset!r}; use one of "
                               f"{', '.join(PRESETS)}.")
    base = PRESETS.get(preset, {})
    _check_combination(preset, base, prune, structure, distribution)
    if structure is not None:           # replaces the preset's unstructured pruning
        base = {k: v for k, v in base.items() if k not in ("prune", "distribution")}
    chosen = {"prune": prune, "structure": structure, "clusters": clusters,
              "distribution": distribution}
    chosen = {k: base.get(k) if v is None else v for k, v in chosen.items()}
    chosen["quantize"] = base.get("quantize", "int8") if quantize == "auto" else quantize
    unstructured = chosen["prune"] is not None and chosen["structure"] is None
    chosen["distribution"] = (chosen["distribution"] or "uniform") if unstructured \
        else None
    chosen["passes"] = base.get("passes", finetune.MIN_PASSES)
    return chosen


def _check_combination(preset, base, prune, structure, distribution):
    """Options that would have no effect together are refused with the
    reason (docs/errors.md): m:n fixes the sparsity and ignores the
    distribution, and a distribution needs something to prune."""
    structure = structure if structure is not None else base.get("structure")
    named = f"the {preset} preset's " if preset and "structure" in base else ""
    if structure is not None and prune is not None:
        raise CompressionError(
            f"prune={prune!r} and {named}structure {structure!r} both set the "
            f"sparsity: m:n keeps m of every n weights (sparsity 1 - m/n). Give one "
            "of them.")
    if distribution is not None and structure is not None:
        raise CompressionError(
            f"distribution={distribution!r} has no effect with {named}structure "
            f"{structure!r}: m:n prunes every layer alike. Drop one of them.")
    if distribution is not None and prune is None and base.get("prune") is None:
        raise CompressionError(
            f"distribution={distribution!r} has no effect: nothing is pruned"
            + (f" in the {preset} preset" if preset else "")
            + ". Add prune (--prune) or drop the distribution.")
