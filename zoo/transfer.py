"""Transfer learning: freezing by stage and two-phase fine-tuning.

Phase 1 trains the new classifier with the backbone frozen; phase 2
unfreezes the last K stages and trains at a lower learning rate.  Frozen
BatchNormalization layers run in inference mode (Keras semantics) and stay
frozen in phase 2 unless `train_bn=True`, which keeps small fine-tuning sets
from wrecking their statistics.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from zoo import registry


def stage_slices(model, name=None):
    """[(stage name, [layers])] for the stem, each stage and the head.

    The stages are found from the registry's stage names, so this works for
    any zoo model (also one reloaded from .keras) whose name is its registry
    name, or when `name` is given.
    """
    entry = registry.get_entry(name or model.name)
    spec = entry.spec
    ends = entry.stage_names(spec)
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    missing = [e for e in ends if e not in index]
    if missing:
        raise ValueError(f"{model.name} lacks stage layer(s) {', '.join(missing)}; "
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
            raise ValueError(f"No layer named {up_to!r} in {model.name}.")
        cut = names.index(up_to) + 1
        for i, layer in enumerate(model.layers):
            layer.trainable = i >= cut
        return model
    stages = len(slices) - 1
    last = stages - 1 if up_to is None else up_to
    if not isinstance(last, int) or not 0 <= last < stages:
        raise ValueError(f"up_to must be a stage index 0..{stages - 1} or a layer "
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
        raise ValueError(f"last_stages must be in 0..{stages}; got {last_stages!r}.")
    for i, (_, layers) in enumerate(slices):
        if i == stages or i >= stages - k:
            _set(layers, True, train_bn)
    return model


def fine_tune(model, train_data, val_data=None, *, head_epochs=3, epochs=5,
              unfreeze_stages=2, learning_rate=1e-3, fine_tune_factor=0.1,
              optimizer="adam", train_bn=False, callbacks=None, verbose=0):
    """Two-phase fine-tuning of a model that carries pretrained weights.

    Args:
        model: a zoo model (built with `weights=`).
        train_data, val_data: tf.data pipelines of (images, labels).
        head_epochs: phase 1 epochs (backbone frozen).
        epochs: phase 2 epochs (last `unfreeze_stages` stages trainable).
        learning_rate: phase 1 learning rate; phase 2 uses it × fine_tune_factor.

    Returns:
        {"head": History.history, "fine_tune": History.history}

    Example:
        >>> m = zoo.create_model("resnet20", weights="fashion_mnist", num_classes=10,
        ...                      input_shape=(8, 8, 1))
        >>> zoo.fine_tune(m, data.train, data.val, head_epochs=2, epochs=3)
    """
    from zoo.training import make_optimizer
    loss = keras.losses.SparseCategoricalCrossentropy()
    freeze(model)
    model.compile(make_optimizer(optimizer, learning_rate), loss, metrics=["accuracy"])
    head = model.fit(train_data, validation_data=val_data, epochs=head_epochs,
                     callbacks=callbacks, verbose=verbose)
    unfreeze(model, unfreeze_stages, train_bn=train_bn)
    model.compile(make_optimizer(optimizer, learning_rate * fine_tune_factor), loss,
                  metrics=["accuracy"])
    tuned = model.fit(train_data, validation_data=val_data, epochs=epochs,
                      callbacks=callbacks, verbose=verbose)
    return {"head": head.history, "fine_tune": tuned.history}


def train_fine_tune(config, out, *, overwrite=False, head_epochs=None,
                    unfreeze_stages=2, fine_tune_factor=0.1):
    """`zoo train --fine-tune`: the two phases as two resumable runs.

    Phase 1 (``out/phase1``) trains the head; phase 2 (``out``) starts from
    its model, unfreezes the last `unfreeze_stages` stages and trains at the
    learning rate × `fine_tune_factor`.  A finished phase 1 is reused when
    the command is run again.
    """
    from zoo import training
    out = Path(out)
    head_epochs = head_epochs or max(1, config.epochs // 3)
    phase1 = dataclasses.replace(config, fine_tune=False, epochs=head_epochs)
    training.train(phase1, out / "phase1", overwrite=overwrite,
                   prepare_model=lambda m: freeze(m, name=config.model),
                   reuse_finished=True)
    phase2 = dataclasses.replace(config, weights=None, fine_tune=False,
                                 lr=config.learning_rate * fine_tune_factor,
                                 extra={**config.extra, "fine_tune_from": config.weights})
    return training.train(
        phase2, out, overwrite=overwrite,
        initial_weights=out / "phase1" / "model.keras",
        prepare_model=lambda m: (freeze(m, name=config.model),
                                 unfreeze(m, unfreeze_stages, name=config.model)))
