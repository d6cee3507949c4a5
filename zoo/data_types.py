"""The two records every dataset loader returns: `DatasetInfo` (what the
pipelines hold) and `Data` (the train / validation / test pipelines)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DatasetInfo:
    """What the pipelines hold.

    Attributes:
        name: the source string.
        class_names: list of class names (index = label).
        image_shape: (height, width, channels) the pipelines yield.
        source_shape: (height, width, channels) of the stored images.
        num_train, num_val, num_test: examples per split.
        preprocessing: scaling mode applied (see zoo.preprocessing).
        allow_flip: whether mirroring keeps the class (False for digits).
        test_is_validation: True when the source has no separate test split.
    """

    name: str
    class_names: list
    image_shape: tuple
    source_shape: tuple
    num_train: int
    num_val: int
    num_test: int
    preprocessing: str
    allow_flip: bool = True
    test_is_validation: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["num_classes"] = self.num_classes
        return d


@dataclass
class Data:
    """Train / validation / test pipelines of (images, int labels) batches."""

    train: object
    val: object
    test: object
    info: DatasetInfo
    augmenter: object = field(default=None, repr=False)
    raw_sample: tuple = field(default=None, repr=False)
    # The number of the next pass over the training set (a tf.Variable; see
    # `training_stream`). `zoo.training` sets it when a run resumes.
    train_pass: object = field(default=None, repr=False)
