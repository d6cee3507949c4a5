"""`ZooHyperModel`: keras-tuner's HyperModel over zoo models, built from
sampled hyperparameters (no copied architecture) and trained for the
search's TrialPlan (tuning.plan)."""

from __future__ import annotations

import keras
import keras_tuner

import zoo
from . import plan as plan_lib
from . import spaces
from zoo import data as data_lib
from zoo import training


class ZooHyperModel(keras_tuner.HyperModel):
    """Builds zoo models from sampled hyperparameters (no copied architecture)
    and trains them for the search's TrialPlan.

    Args:
        model_name: registry name.
        num_classes: classifier width.
        input_shape: (h, w, c).
        space: dict, space file, "focused" or "wide" (see tuning.spaces).
        dataset: source for `fit` (zoo.data.load), with `data_kwargs`.
        plan: tuning.plan.TrialPlan (budget in optimizer steps, folds).

    Example:
        >>> hm = ZooHyperModel("resnet20", 10, (8, 8, 1), dataset="digits",
        ...                    plan=plan_trials(1437))
        >>> model = hm.build(keras_tuner.HyperParameters())
    """

    def __init__(self, model_name, num_classes, input_shape, space=None, *,
                 dataset="digits", data_kwargs=None, plan=None):
        super().__init__(name=f"zoo_{model_name}")
        self.model_name = model_name
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.space = spaces.resolve_space(model_name, space)
        self.dataset = dataset
        self.data_kwargs = dict(data_kwargs or {})
        self.plan = plan or plan_lib.plan_trials(1000)
        self._data = {}

    def build(self, hp):
        space = self.space
        # Declared here so that keras-tuner knows them; `trial_data` reads them.
        spaces.sample(hp, "batch_size", space,
                      default=spaces.TRAIN_DEFAULTS["batch_size"])
        spaces.sample(hp, "augment", space)
        name, arch = spaces.architecture(hp, self.model_name, space)
        model = zoo.create_model(
            name, num_classes=self.num_classes, input_shape=self.input_shape,
            regularizer=spaces.regularizer(hp, space),
            dropout_rate=spaces.sample(hp, "dropout", space), **arch)
        spaces.sample(hp, "label_smoothing", space)
        smoothing = self.smoothing(hp)      # the same rule as the trial's labels
        loss = (keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
                if smoothing else keras.losses.SparseCategoricalCrossentropy())
        plan = self.plan
        model.compile(optimizer=spaces.optimizer(hp, space, plan.total_steps,
                                                 plan.steps_per_epoch),
                      loss=loss, metrics=["accuracy"])
        return model

    def data(self, batch_size, augment, fold=None):
        key = (batch_size, augment, fold)
        if key not in self._data:
            self._data[key] = data_lib.load(
                self.dataset, batch_size=batch_size, augment=augment, fold=fold,
                validation_split=self.plan.validation_split, **self.data_kwargs)
        return self._data[key]

    def trial_data(self, hp, fold=None):
        """The Data a trial with these hyperparameters trains on: with the
        trial's augmentation where the space has the knob, else the
        recipe's (`zoo train`'s), so that trials rank configurations under
        the augmentation the final retraining uses (docs/tuning.md)."""
        batch = self.batch_size(hp)
        augment = hp.get("augment") if "augment" in hp.values else \
            spaces.TRAIN_DEFAULTS["augment"]
        return self.data(batch, augment, fold)

    @staticmethod
    def batch_size(hp) -> int:
        """The trial's batch size: sampled where the space has the knob,
        else zoo train's (the recipe's)."""
        return int(hp.get("batch_size") if "batch_size" in hp.values
                   else spaces.TRAIN_DEFAULTS["batch_size"])

    def smoothing(self, hp) -> float:
        """The trial's label smoothing: sampled where the space has the
        knob, else zoo train's (the recipe's)."""
        if self.space.get("label_smoothing") is None:
            return spaces.TRAIN_DEFAULTS["label_smoothing"]
        return hp.values.get("label_smoothing") or 0.0

    def prepare(self, hp, model, fold=None):
        """The (train, validation) pipelines of a trial's fold, with every
        variable of the compiled `model` created for them (so that its
        state can be saved before training: `InitialState`)."""
        data = self.trial_data(hp, fold)
        train, val = data.train, data.val
        if self.smoothing(hp):
            train, val = (data_lib.one_hot(ds, self.num_classes) for ds in (train, val))
        training.build_for_fit(model, train)
        return train, val

    def fit(self, hp, model, *args, fold=None, **kwargs):
        """Trains for the plan's epochs of `steps_per_epoch` optimizer steps
        each (on `fold` of a k-fold partition, or on the holdout split)."""
        train, val = self.prepare(hp, model, fold)
        kwargs.setdefault("validation_data", val)
        # The pipeline shuffles itself; keras-tuner passes fit's default
        # shuffle=True, which Keras ignores with a warning for tf.data.
        kwargs["shuffle"] = False
        return model.fit(train.repeat(), *args,
                         steps_per_epoch=self.plan.steps_per_epoch, **kwargs)


class InitialState:
    """A compiled model's weights and optimizer variables before training.
    The folds of a trial share one model: each fold after the first starts
    from this state, so it trains from the same initial weights with a
    fresh optimizer, and Keras' traced training and evaluation steps are
    reused instead of traced again (about 3 s of a 7 s fold of resnet20 on
    8×8 images, 2 cores)."""

    def __init__(self, model):
        self.weights = model.get_weights()
        self.optimizer = [v.numpy() for v in model.optimizer.variables]

    def restore(self, model):
        model.set_weights(self.weights)
        for variable, value in zip(model.optimizer.variables, self.optimizer):
            variable.assign(value)
