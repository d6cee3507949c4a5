"""The model registry: every architecture is an entry of data.

Each family module under zoo/models/ declares its models in a module-level
`ENTRIES` list (the ModelEntry fields as dicts); the registry imports every
module of that package and collects them, so a new family is one new file
(docs/architectures.md, "How to add a model"), and its pretrained weights
in a `WEIGHTS` list of `zoo.weight_records.WeightRecord`. `list_models`,
`create_model`, `model_info` and the per-model functions
(`zoo.resnet50(...)`) all read the same table.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import zoo.models
from zoo.weight_records import WeightRecord, read_shipped_cards
from zoo.errors import InputError, InputTypeError

# A pretrained weight's record (the name WeightSpec is kept for old code).
WeightSpec = WeightRecord


@dataclass(frozen=True)
class ModelEntry:
    """One architecture: its spec, builder and what users need to know.

    Attributes:
        name: registry name, e.g. "resnet50".
        family: one of FAMILIES.
        spec: the frozen spec dataclass the builder reads.
        builder: function (spec, ctx, inputs, **head_options) -> outputs.
        stage_names: function (spec) -> layer names that end each stage.
        default_size: input height/width the model is designed for.
        min_size: smallest input height/width it can process.
        default_classes: classes of its reference dataset.
        reference: the paper (and layout) it reproduces.
        preprocessing: "caffe" | "tf" | "torch", the input scaling its
            reference weights expect (see zoo.preprocess_input).
        width_attr: spec field that a `width_multiplier` argument replaces.
        default_dropout: dropout before the classifier when none is given.
        drop_path: whether `drop_path_rate` applies (residual families).
        static_input: the classifier needs a known input size (it flattens
            the feature map).
        torch_module: function (spec, layer name) -> torchvision's module
            name for that layer (None for layers without one), for models
            with torchvision's layout; None for the others. Its files
            (.safetensors, .pth) load into exactly these models.
        keras_signature: keras.applications' positional argument order of
            its constructor, when it differs from the common one
            (zoo.applications.COMMON_ORDER).
        bf16_training: whether mixed bfloat16 speeds its training up on
            CPUs with bf16 instructions (zoo.training.fast_path).
        search: the knobs this model adds to the wide search space
            (tuning.spaces), {knob: {"values": [...]}}: a create_model
            option (width_multiplier), a training setting that the family
            searches over its own range (dropout), or a knob that picks a
            sibling model, with "models": {value: registry name} (depth,
            cardinality).
        weights: tag -> WeightRecord: the records the family module
            declares (its WEIGHTS) and the shipped checkpoints' cards.
    """

    name: str
    family: str
    spec: Any
    builder: Callable
    stage_names: Callable
    default_size: int
    min_size: int
    default_classes: int
    reference: str
    preprocessing: str
    width_attr: str | None = None
    default_dropout: float = 0.0
    drop_path: bool = False
    static_input: bool = False
    torch_module: Callable | None = None
    keras_signature: tuple | None = None
    bf16_training: bool = True
    search: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)

    @property
    def static_input_required(self) -> bool:
        return self.static_input


_REGISTRY: dict[str, ModelEntry] = {}


def _add(entry: ModelEntry) -> None:
    if entry.name in _REGISTRY:
        raise RuntimeError(f"model {entry.name!r} registered twice")
    _REGISTRY[entry.name] = entry


def _collect() -> tuple[str, ...]:
    """Registers the ENTRIES and WEIGHTS of every module in zoo/models and
    the shipped checkpoints' cards; returns the families in the order their
    modules declare them."""
    families, weights = [], []
    for module in sorted(m.name for m in pkgutil.iter_modules(zoo.models.__path__)):
        module = importlib.import_module(f"zoo.models.{module}")
        for fields in getattr(module, "ENTRIES", ()):
            _add(ModelEntry(**fields))
            if fields["family"] not in families:
                families.append(fields["family"])
        weights += getattr(module, "WEIGHTS", ())
    for record in weights + read_shipped_cards():
        _add_weights(record)
    return tuple(families)


def _add_weights(record: WeightRecord) -> None:
    entry = _REGISTRY.get(record.arch)
    if entry is None:
        raise RuntimeError(f"weights {record.full_tag} name no registered model")
    if record.tag in entry.weights:
        raise RuntimeError(f"weights {record.full_tag} declared twice")
    entry.weights[record.tag] = record


FAMILIES = _collect()


def get_entry(name: str) -> ModelEntry:
    """Returns the registry entry, or a ValueError suggesting close names."""
    if not isinstance(name, str):
        raise InputTypeError(f"Model name must be a string; got {type(name).__name__}.")
    entry = _REGISTRY.get(name.lower())
    if entry is not None:
        return entry
    query = name.lower()
    close = difflib.get_close_matches(query, list(_REGISTRY), n=5, cutoff=0.6)
    close += [n for n in _REGISTRY if n.startswith(query) and n not in close]
    # Names that extend what was typed come first, then the most similar.
    def rank(n):
        similarity = difflib.SequenceMatcher(None, query, n).ratio()
        return not n.startswith(query), -similarity, len(n), n
    close = sorted(close, key=rank)[:3]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise InputError(f"Unknown model {name!r}.{hint} See zoo.list_models().")


def has_imagenet(name: str) -> bool:
    """Whether keras.applications publishes ImageNet weights for `name`."""
    return "imagenet" in get_entry(name).weights


def weight_tags(name: str) -> list[str]:
    """Full weight tags of a model: "resnet50.imagenet", "resnet20.fashion_mnist",
    "tv_resnet50.tv2_in1k"."""
    entry = get_entry(name)
    return [record.full_tag for _, record in sorted(entry.weights.items())]


def weight_records(source: str | None = None) -> list[WeightRecord]:
    """Every pretrained weight's record (of one source), by full tag."""
    found = [r for e in _REGISTRY.values() for r in e.weights.values()
             if source is None or r.source == source]
    return sorted(found, key=lambda r: r.full_tag)


def list_models(pattern: str = "*", family: str | None = None,
                pretrained: bool = False) -> list[str]:
    """Lists registered model names.

    Args:
        pattern: fnmatch pattern, e.g. "resnext*".
        family: keep one family (one of FAMILIES).
        pretrained: keep only models with weights (ImageNet or shipped).

    Returns:
        Sorted list of names.

    Example:
        >>> list_models("resnext*")
        ['resnext101_32x8d', 'resnext29_16x64d', 'resnext29_8x64d', 'resnext50_32x4d']
    """
    if family is not None and family not in FAMILIES:
        raise InputError(f"Unknown family {family!r}; choose one of "
                         f"{', '.join(FAMILIES)}.")
    names = [n for n, e in _REGISTRY.items()
             if fnmatch.fnmatch(n, pattern.lower())
             and (family is None or e.family == family)
             and (not pretrained or weight_tags(n))]
    return sorted(names)


def entries() -> dict[str, ModelEntry]:
    return dict(_REGISTRY)


def with_width(entry: ModelEntry, width_multiplier: float | None):
    """The entry's spec, with the width multiplier replaced if given."""
    if width_multiplier is None:
        return entry.spec
    return dataclasses.replace(entry.spec, **{entry.width_attr: width_multiplier})
