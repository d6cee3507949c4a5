"""Transfer learning: freezing by stage and LP-FT fine-tuning.

`fine_tune` is the one implementation behind `zoo.fine_tune(...)` and
`zoo train --weights W --fine-tune` (docs/transfer.md):

1. **New head.** The classifier is re-initialised (a new dataset has new
   classes, even when it has as many), unless `keep_head=True`.
2. **Linear probe** (the LP of LP-FT, Kumar et al. 2022). The frozen
   backbone runs once over the training images; a scikit-learn logistic
   regression (L-BFGS, its strength chosen on the validation split, 0.1
   without one) is fit
   to convergence on those features and written into the classifier.
   When the first convolution was adapted to another number of input
   channels, the BatchNormalization statistics are re-estimated on the
   training images first (zoo.probe.recalibrate_bn).
3. **Fine-tuning** of every layer for a budget counted in optimizer steps,
   with the recipe's schedule (warm-up, then a linear decay to 0), the
   backbone at a lower learning rate
   than the head, and BatchNormalization trained or frozen (`bn=`); the
   recipe's selection rule (zoo.recipe) keeps the last or the best epoch,
   and the best is never one below the probed model.
"""

from __future__ import annotations

import math

import keras

from zoo import registry
from zoo.budget import MIN_EPOCH_STEPS, budget
from zoo.errors import InputError
from zoo.heads import sparse_loss
from zoo.optim import (DEFAULT_LR, FINE_TUNE_LR, build_for_fit, check_optimizer,
                       make_optimizer, make_schedule)
from zoo.probe import classifier_layer, linear_probe, recalibrate_bn, reset_head
from zoo.recipe import RECIPE, SELECTIONS


def stage_slices(model, name=None):
    """[(stage name, [layers])] for the stem, each stage and the head.

    The stages are found from the registry's stage names, so this works for
    any zoo model (also one reloaded from .keras) whose name is its registry
    name, or when `name` is given.
    """
    entry = registry.get_entry(name or model.name)
    ends = entry.stage_names(entry.spec)
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    missing = [e for e in ends if e not in index]
    if missing:
        raise InputError(f"{model.name} lacks stage layer(s) {', '.join(missing)}; "
                         f"is it a {entry.name}?")
    slices, start = [], 0
    for i, end in enumerate(ends):
        stop = index[end] + 1
        slices.append((f"stage{i}", model.layers[start:stop]))
        start = stop
    slices.append(("head", model.layers[start:]))
    return slices


def _set(layers, trainable, train_bn):
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization) and trainable:
            layer.trainable = train_bn
        else:
            layer.trainable = trainable


def freeze(model, up_to=None, *, name=None):
    """Freezes the backbone up to a stage (inclusive).

    Args:
        model: a zoo model.
        up_to: None (every stage: only the head trains), a stage index
            (0 = stem) or a layer name.

    Example:
        >>> freeze(model)             # train the classifier only
        >>> freeze(model, up_to=2)    # stem and first two stages frozen
    """
    slices = stage_slices(model, name)
    if isinstance(up_to, str):
        names = [layer.name for layer in model.layers]
        if up_to not in names:
            raise InputError(f"No layer named {up_to!r} in {model.name}.")
        cut = names.index(up_to) + 1
        for i, layer in enumerate(model.layers):
            layer.trainable = i >= cut
        return model
    stages = len(slices) - 1
    last = stages - 1 if up_to is None else up_to
    if not isinstance(last, int) or not 0 <= last < stages:
        raise InputError(f"up_to must be a stage index 0..{stages - 1} or a layer "
                         f"name; got {up_to!r}.")
    for i, (_, layers) in enumerate(slices):
        _set(layers, i > last, train_bn=True)
    return model


def unfreeze(model, last_stages=None, *, train_bn=False, name=None):
    """Makes the head and the last `last_stages` stages trainable (all if None)."""
    slices = stage_slices(model, name)
    stages = len(slices) - 1
    k = stages if last_stages is None else last_stages
    if not isinstance(k, int) or not 0 <= k <= stages:
        raise InputError(f"last_stages must be in 0..{stages}; got {last_stages!r}.")
    for i, (_, layers) in enumerate(slices):
        if i == stages or i >= stages - k:
            _set(layers, True, train_bn)
    return model


BN_POLICIES = ("auto", "train", "freeze")
# Measured in docs/transfer.md ("Measured: transfer with default flags").
BACKBONE_LR_FACTOR = 1.0
MIN_BN_BATCH = 16


def bn_policy(bn, batch_size) -> str:
    """"train" or "freeze" for `bn`; "auto" trains BatchNormalization when a
    batch holds at least MIN_BN_BATCH images (smaller batches give noisy
    statistics) and freezes it otherwise."""
    if bn not in BN_POLICIES:
        raise InputError(f"bn must be one of {', '.join(BN_POLICIES)}; got {bn!r}.")
    if bn != "auto":
        return bn
    return "train" if batch_size >= MIN_BN_BATCH else "freeze"


def scale_backbone_lr(optimizer, model, factor):
    """Makes `optimizer` update every variable except the classifier's at
    `factor` × its learning rate (warm-up and schedule included).

    Keras optimizers have one learning rate; this scales it per variable in
    `update_step`, so it works for every optimizer. The optimizer's config
    (what `model.save` writes) is unchanged.
    """
    if factor == 1:
        return optimizer
    head = {id(v) for v in classifier_layer(model).weights}
    backbone = [v for v in model.trainable_variables if id(v) not in head]
    # Private Keras API, checked on Keras 3.15.1 (tests/test_private_apis.py):
    # the key the optimizer itself gives a variable, which also matches a
    # TensorFlow distributed variable inside update_step.
    keys = {optimizer._var_key(v) for v in backbone}   # noqa: SLF001
    plain = optimizer.update_step

    def update_step(gradient, variable, learning_rate):
        if optimizer._var_key(variable) in keys:        # noqa: SLF001
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * factor
        return plain(gradient, variable, learning_rate)

    optimizer.update_step = update_step
    return optimizer


class _KeepBest(keras.callbacks.Callback):
    """The weights of the best validation epoch, from a floor (the probe)."""

    def __init__(self, monitor, floor):
        super().__init__()
        self.monitor, self.best, self.weights = monitor, floor, None

    def on_train_begin(self, logs=None):
        self.weights = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:
            self.best, self.weights = float(value), self.model.get_weights()


def prepare(model, train_data, val_data=None, *, keep_head=False, bn="auto",
            batch_size=32, unfreeze_stages=None, seed=0, name=None) -> dict:
    """Phase 1 and the layer settings of phase 2 (see the module doc).

    When the first convolution was adapted to another number of input
    channels (`model.zoo_adapted_stem`, zoo.weights.assign), the
    BatchNormalization statistics are re-estimated on `train_data` first
    (zoo.probe.recalibrate_bn).

    Returns: {"head": "new" | "kept", "probe": linear_probe(...) or None,
        "bn": "train" | "freeze", "unfreeze_stages", "bn_recalibrated":
        None or {"layer", "from_channels", "to_channels", "batches"}}.
    """
    policy = bn_policy(bn, batch_size)
    summary = {"head": "kept" if keep_head else "new", "probe": None, "bn": policy,
               "unfreeze_stages": "all" if unfreeze_stages is None else unfreeze_stages,
               "bn_recalibrated": None}
    adapted = getattr(model, "zoo_adapted_stem", None)
    if adapted:
        # docs/transfer.md, "Measured: the BatchNormalization statistics
        # re-estimated for an adapted first convolution".
        summary["bn_recalibrated"] = {**adapted, "batches": recalibrate_bn(model, train_data)}
    if not keep_head:
        reset_head(model, seed)
        summary["probe"] = linear_probe(model, train_data, val_data, seed=seed)
    if unfreeze_stages is None:
        for layer in model.layers:
            layer.trainable = not (policy == "freeze" and isinstance(
                layer, keras.layers.BatchNormalization))
    else:
        freeze(model, name=name)
        unfreeze(model, unfreeze_stages, train_bn=policy == "train", name=name)
    return summary


def describe(summary, *, steps, epochs, learning_rate, backbone_lr_factor) -> str:
    """The lines `zoo train --fine-tune` prints about what it does."""
    probe = summary["probe"]
    again = summary.get("bn_recalibrated")
    lines = [f"fine-tune: first convolution adapted from {again['from_channels']} to "
             f"{again['to_channels']} input channels: BatchNormalization statistics "
             f"re-estimated on {again['batches']} training batches"] if again else []
    lines += [f"fine-tune: head {summary['head']}"
              + ("" if probe is None else
                 f"; phase 1 linear probe on {probe['num_features']} features "
                 f"(C={probe['C']:g}): train accuracy {probe['train_accuracy']:.4f}"
                 + ("" if probe["val_accuracy"] is None else
                    f", validation accuracy {probe['val_accuracy']:.4f}")
                 + f", {probe['seconds']:.1f} s"),
              f"fine-tune: phase 2 {epochs * steps} optimizer steps ({epochs} "
              f"epochs × {steps}), head lr {learning_rate:g}, backbone lr "
              f"{learning_rate * backbone_lr_factor:g}, BatchNormalization "
              f"{summary['bn']}, stages unfrozen: {summary['unfreeze_stages']}"]
    return "\n".join(lines)


def _compile(model, optimizer, learning_rate, total, weight_decay, backbone_lr_factor,
             train_data):
    """Phase 2's optimizer: the recipe's schedule (warm-up, then decay to 0)
    over `total` steps, the backbone's learning rate scaled by
    `backbone_lr_factor`; the model's training variables built for
    `train_data` (zoo.training.build_for_fit)."""
    schedule = make_schedule(RECIPE.schedule, learning_rate, total, total // 10)
    opt = make_optimizer(optimizer, schedule, weight_decay=weight_decay)
    scale_backbone_lr(opt, model, backbone_lr_factor)
    model.compile(opt, sparse_loss(model, keras), metrics=["accuracy"])
    build_for_fit(model, train_data)


def _phase2_budget(spe, batch_size, steps):
    """(epochs, steps per epoch) of phase 2: `steps`, or `zoo train`'s budget."""
    if not steps:
        return budget(spe * batch_size, batch_size)
    per_epoch = min(max(spe, MIN_EPOCH_STEPS), int(steps))
    return -(-int(steps) // per_epoch), per_epoch


def fine_tune(model, train_data, val_data=None, *, probe_data=None, steps=None,
              batch_size=None, learning_rate=None, backbone_lr_factor=BACKBONE_LR_FACTOR,
              optimizer="adam", weight_decay=0.0, bn="auto", keep_head=False,
              unfreeze_stages=None, callbacks=None, verbose=0, seed=0,
              name=None, selection=None) -> dict:
    """LP-FT fine-tuning of a model that carries pretrained weights.

    Args:
        model: a zoo model built with `weights=`.
        train_data, val_data: tf.data pipelines of (images, labels).
        probe_data: training images for the linear probe (default
            `train_data`; pass the pipeline without augmentation if any).
        steps: phase 2 optimizer steps; default: the budget of `zoo train`
            (zoo.training.budget: at least 10 epochs and RECIPE.min_steps).
        learning_rate: peak learning rate of the head (default: the
            recipe's, as `zoo train --fine-tune`: RECIPE.fine_tune_lr, 3e-3
            with Adam); the backbone gets `learning_rate × backbone_lr_factor`.
        bn: "auto" | "train" | "freeze" (see `bn_policy`).
        keep_head: keep the checkpoint's classifier (same classes) and skip
            the probe.
        unfreeze_stages: fine-tune only the head and the last K stages
            (None: all).
        callbacks: extra Keras callbacks of phase 2.
        selection: "best" (best validation epoch, never below the probe) or
            "last"; default the recipe's rule, as `zoo train` (RECIPE.selection).

    Returns:
        {"summary": prepare(...), "history": History.history, "best_val_accuracy",
         "selection": "best" | "last", "kept": "probe" | "fine_tune"}

    Example:
        >>> m = zoo.create_model("resnet20", weights="fashion_mnist",
        ...                      input_shape=(28, 28, 1))
        >>> zoo.fine_tune(m, data.train, data.val)
    """
    spe, learning_rate = _check_fine_tune(train_data, val_data, selection,
                                          learning_rate, optimizer)
    if batch_size is None:
        batch_size = int(next(iter(train_data))[1].shape[0])
    epochs, per_epoch = _phase2_budget(spe, batch_size, steps)
    summary = prepare(model, probe_data or train_data, val_data, keep_head=keep_head,
                      bn=bn, batch_size=batch_size, unfreeze_stages=unfreeze_stages,
                      seed=seed, name=name)
    if verbose:
        print(describe(summary, steps=per_epoch, epochs=epochs, learning_rate=learning_rate,
                       backbone_lr_factor=backbone_lr_factor), flush=True)
    _compile(model, optimizer, learning_rate, epochs * per_epoch, weight_decay,
             backbone_lr_factor, train_data)
    probe = summary["probe"] or {}
    floor = probe.get("val_accuracy" if val_data is not None else "train_accuracy")
    keep = _KeepBest("val_accuracy" if val_data is not None else "accuracy",
                     -math.inf if floor is None else floor)
    history = model.fit(train_data.repeat() if per_epoch != spe else train_data,
                        steps_per_epoch=per_epoch if per_epoch != spe else None,
                        validation_data=val_data, epochs=epochs,
                        callbacks=[*(callbacks or []), keep], verbose=verbose,
                        shuffle=False)
    selection, kept = _keep(model, keep, floor, selection, val_data)
    return {"summary": summary, "history": history.history,
            "best_val_accuracy": keep.best, "selection": selection, "kept": kept}


def _check_fine_tune(train_data, val_data, selection, learning_rate, optimizer):
    """fine_tune's arguments checked: (steps per pass, peak learning rate)."""
    spe = int(train_data.cardinality())
    if spe < 1:
        raise InputError("train_data must be a finite, batched tf.data pipeline.")
    if selection not in (None, *SELECTIONS) or (selection == "best" and val_data is None):
        raise InputError(f"selection must be one of {', '.join(SELECTIONS)} (or None: the "
                         "recipe's rule), and 'best' needs val_data to choose an epoch "
                         f"by; got {selection!r}.")
    if learning_rate is None:
        learning_rate = FINE_TUNE_LR.get(optimizer, DEFAULT_LR[check_optimizer(optimizer)])
    return spe, learning_rate


def _keep(model, keep, floor, selection, val_data):
    """(selection, "probe" | "fine_tune") after phase 2; None: the recipe's
    rule for the images of `val_data`. "best" restores the best epoch."""
    if selection is None:
        selection = RECIPE.selection(sum(int(b[1].shape[0]) for b in val_data or ()))
    if selection != "best":
        return selection, "fine_tune"
    model.set_weights(keep.weights)
    return selection, "probe" if floor is not None and keep.best <= floor else "fine_tune"
