"""One record per pretrained weight, whatever its source.

A `WeightRecord` says what a weight file is and how to use it, the way
torchvision's `Weights(url, transforms, meta)` and keras-hub's presets do:
where the file is (`files`), how to check it (`hash`), the input scaling it
was trained with (`preprocessing`), its classes and input size, the names of
its first convolution and classifier in the file (what adaptation to other
channels or classes touches), its licence and card, and its published or
measured metrics.

Sources (`WeightRecord.source`):

* ``keras.applications`` – Keras' ImageNet files, declared by the family
  modules next to their models (one file per include_top and input size);
* ``torchvision`` / ``timm`` – published PyTorch checkpoints of the models
  with torchvision's layout, declared by the family modules;
* ``shipped`` – checkpoints trained here, in zoo/weights/ with their cards
  (zoo/weights/cards.json);
* ``converted`` – a `.weights.h5` written by `zoo convert-weights`, which
  carries its record inside the file (`read_converted`).

`zoo.registry` collects the records into `ModelEntry.weights` (tag ->
record); `list_models(pretrained=True)`, `zoo info`, the loaders and
`zoo.weights.preprocessing_of` read them there.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import WeightsError

SOURCES = ("keras.applications", "torchvision", "timm", "shipped", "converted")
WEIGHTS_DIR = Path(__file__).parent / "weights"
KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
TORCHVISION = "https://download.pytorch.org/models/"
RECORD_ATTRIBUTE = "zoo_record"            # HDF5 attribute of converted files


@dataclass(frozen=True)
class WeightFile:
    """One file of a record.

    Attributes:
        name: file name (in zoo/weights/, Keras' cache or torch's hub cache).
        url: where it is published ("" for shipped files).
        hash: "md5:<hex>", "sha256:<hex>" or "sha256-prefix:<hex>" (the
            8 hex digits torchvision puts in its file names), None when the
            publisher gives none.
        include_top: whether the file holds the classifier.
        rows: the input size it was trained at, when a record has several.
    """

    name: str
    url: str = ""
    hash: str | None = None
    include_top: bool = True
    rows: int | None = None


@dataclass(frozen=True)
class WeightRecord:
    """A pretrained weight: what it is, where it is, what it expects.

    Attributes:
        arch: registry name of the model it fits.
        tag: short tag ("imagenet", "tv_in1k", "fashion_mnist"); the full
            tag is "arch.tag".
        source: one of SOURCES.
        files: the file(s), one per include_top/rows variant.
        preprocessing: input scaling mode (zoo.preprocessing).
        num_classes, input_shape: what the weights were trained with.
        first_conv, classifier: the names of the first convolution and of
            the classifier *in the file* (Keras layer names or torch module
            names): what adaptation to other channels or classes changes.
        dataset, split: data it was trained and evaluated on.
        metrics: e.g. {"top1": 0.7613} (published) or {"test_accuracy": ...}.
        num_params: parameters of the trained model.
        licence: the weights' licence.
        card: where they are described (URL) or how they were made.
        command: the command that reproduces them (shipped checkpoints).
        date: when they were produced.
        class_names: label names, index = class.
        extra: anything else the card states.
    """

    arch: str
    tag: str
    source: str
    files: tuple
    preprocessing: str
    num_classes: int
    input_shape: tuple
    first_conv: str = ""
    classifier: str = ""
    dataset: str = ""
    split: str = ""
    metrics: dict = field(default_factory=dict)
    num_params: int | None = None
    licence: str = ""
    card: str = ""
    command: str = ""
    date: str = ""
    class_names: tuple = ()
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"{self.full_tag}: source {self.source!r} is not one "
                             f"of {SOURCES}")
        if not self.files:
            raise ValueError(f"{self.full_tag}: a record needs at least one file")

    @property
    def full_tag(self) -> str:
        return f"{self.arch}.{self.tag}"

    @property
    def file(self) -> str:
        return self.files[0].name

    @property
    def sha256(self) -> str | None:
        """The full sha256 of the (first) file, when the record has one."""
        digest = self.files[0].hash or ""
        return digest.split(":", 1)[1] if digest.startswith("sha256:") else None

    @property
    def path(self) -> Path:
        """A shipped checkpoint's file in zoo/weights/."""
        return WEIGHTS_DIR / self.file

    def file_for(self, include_top: bool = True, rows: int | None = None) -> WeightFile:
        """The file for a model with or without its classifier, at `rows`
        pixels when the record has one file per input size (the one at the
        record's own size otherwise, as keras.applications does)."""
        fitting = [f for f in self.files if f.include_top == include_top] \
            or list(self.files)
        sized = [f for f in fitting if f.rows == rows]
        default = [f for f in fitting if f.rows in (None, self.input_shape[0])]
        return (sized or default or fitting)[0]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "WeightRecord":
        data = dict(data)
        data["files"] = tuple(WeightFile(**f) for f in data["files"])
        data["input_shape"] = tuple(data["input_shape"])
        data["class_names"] = tuple(data.get("class_names", ()))
        return cls(**data)


def shipped(card: dict) -> WeightRecord:
    """The record of a checkpoint shipped in zoo/weights/ from its card."""
    card = dict(card)
    files = (WeightFile(card.pop("file"), hash=f"sha256:{card.pop('sha256')}"),)
    card.setdefault("licence", "the package's licence")
    return WeightRecord.from_dict(dict(card, source="shipped",
                                       files=[dataclasses.asdict(f) for f in files]))


def read_shipped_cards() -> list[WeightRecord]:
    path = WEIGHTS_DIR / "cards.json"
    if not path.is_file():
        return []
    return [shipped(card) for card in json.loads(path.read_text()).values()]


def torchvision(arch: str, tag: str, file: str, *, top1: float, num_params: int,
                first_conv: str, classifier: str, recipe: str) -> WeightRecord:
    """A torchvision ImageNet-1k checkpoint (its file name carries the
    first 8 hex digits of its sha256)."""
    prefix = file.rsplit("-", 1)[1].split(".")[0]
    return WeightRecord(
        arch=arch, tag=tag, source="torchvision",
        files=(WeightFile(file, TORCHVISION + file, f"sha256-prefix:{prefix}"),),
        preprocessing="torch", num_classes=1000, input_shape=(224, 224, 3),
        first_conv=first_conv, classifier=classifier, dataset="ImageNet-1k",
        split="published top-1 on the 50,000 validation images (224 crop)",
        metrics={"top1": top1}, num_params=num_params, licence="BSD-3-Clause",
        card=recipe)


def timm(arch: str, timm_name: str, *, first_conv: str, classifier: str,
         num_params: int, top1: float | None = None, card: str = "") -> WeightRecord:
    """A checkpoint timm publishes on the Hugging Face hub
    (timm/<name>/model.safetensors); `top1` when it is published."""
    tag = timm_name.split(".", 1)[1]
    return WeightRecord(
        arch=arch, tag=tag, source="timm",
        files=(WeightFile(f"{timm_name}.safetensors",
                          f"https://huggingface.co/timm/{timm_name}/resolve/main/"
                          "model.safetensors"),),
        preprocessing="torch", num_classes=1000, input_shape=(224, 224, 3),
        first_conv=first_conv, classifier=classifier, dataset="ImageNet-1k",
        metrics={} if top1 is None else {"top1": top1}, num_params=num_params,
        licence="Apache-2.0", card=card or f"https://huggingface.co/timm/{timm_name}")


def converted(arch: str, source_file: str, *, num_classes: int | None,
              input_shape, first_conv: str, classifier: str,
              num_params: int) -> WeightRecord:
    """The record `zoo convert-weights` writes into the file it makes."""
    return WeightRecord(
        arch=arch, tag="converted", source="converted",
        files=(WeightFile(source_file),), preprocessing="torch",
        num_classes=num_classes or 0, input_shape=tuple(input_shape),
        first_conv=first_conv, classifier=classifier if num_classes else "",
        num_params=num_params, card=f"converted from {source_file} by "
                                    "zoo convert-weights")


def read_converted(path) -> WeightRecord | None:
    """The record inside a converted `.weights.h5`, None for other files."""
    import h5py
    path = Path(path)
    if not path.name.endswith(".h5") or not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            text = f.attrs.get(RECORD_ATTRIBUTE)
    except OSError:
        return None
    if text is None:
        return None
    text = text.decode() if isinstance(text, bytes) else str(text)
    try:
        return WeightRecord.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError) as err:
        raise WeightsError(f"{path}'s weight record (HDF5 attribute "
                           f"{RECORD_ATTRIBUTE!r}) is damaged ({type(err).__name__}: "
                           f"{str(err)[:120]}); convert the checkpoint again with "
                           "zoo convert-weights.") from None
