"""What a classifier's output is: the layer that computes the class scores
and whether the model outputs probabilities or logits.

Read from the graph, for Keras 3 models and their tf_keras twins alike (the
compression bridge fine-tunes the twin), so that every loss this package
builds fits the model it trains: a cross-entropy that expects
probabilities, fed logits, drives a trained network to chance (issue #28
measured a digits CNN falling from 0.953 to 0.186 under pruning).
"""

from __future__ import annotations

from zoo.errors import InputError

SCORING = ("Conv2D", "Dense", "SeparableConv2D")
# Layers between a classifier and the model's output (no weights, one input).
PASS_THROUGH = ("Activation", "Softmax", "ReLU", "Dropout", "Reshape", "Flatten")
# Output activations a sparse cross-entropy can train: probabilities or logits.
PROBABILITIES, LOGITS = "softmax", "linear"


def _activation(layer):
    """A layer's activation as a name ("linear" for none)."""
    kind = type(layer).__name__
    if kind in ("Softmax", "ReLU"):
        return PROBABILITIES if kind == "Softmax" else "relu"
    value = layer.get_config().get("activation", "linear")
    if isinstance(value, dict):                       # a serialized function
        value = value.get("config", {}).get("name", value.get("class_name"))
    return str(value or "linear")


def _output_chain(model):
    """The layers from the model's output back to the first scoring layer
    (a Dense or convolution), or None where the output comes from anything
    else (several outputs, a merge, a pooling: a feature extractor)."""
    if len(getattr(model, "outputs", None) or ()) != 1:
        return None
    # KerasTensor._keras_history (private; checked on Keras 3.15.1,
    # tests/test_private_apis.py): the layer that made a tensor.
    layer = model.outputs[0]._keras_history[0]
    chain = [layer]
    while type(layer).__name__ in PASS_THROUGH:
        inputs = layer.input if not isinstance(layer.input, list) else None
        if inputs is None:
            return None
        layer = inputs._keras_history[0]
        chain.append(layer)
    return chain if type(layer).__name__ in SCORING else None


def classifier_name(model):
    """The layer that computes the model's class scores: walking back from
    the output through activations, dropout and reshapes, the first Dense or
    convolution (zoo models: `predictions` or MobileNet's `conv_preds`; a
    user's `Sequential([..., Dense(10, "softmax")])`: its last Dense). None
    when the output comes from anything else (a feature extractor)."""
    chain = _output_chain(model)
    return None if chain is None else chain[-1].name


def from_logits(model) -> bool:
    """True when the model outputs logits, False when it outputs softmax
    probabilities (or is no classifier: nothing to decide).

    Raises InputError for an output activation that is neither (a sigmoid,
    a ReLU after the classifier): a sparse cross-entropy cannot train it.
    """
    chain = _output_chain(model)
    if chain is None:
        return False
    kinds = [_activation(layer) for layer in chain
             if type(layer).__name__ in ("Activation", "Softmax", "ReLU") + SCORING]
    applied = [k for k in kinds if k != LOGITS]
    if not applied:
        return True
    if applied == [PROBABILITIES]:
        return False
    raise InputError(
        f"{model.name}'s output goes through {' then '.join(reversed(applied))}; "
        "training, fine-tuning and compression need class probabilities (softmax) "
        "or logits (no activation). Rebuild the head with "
        "classifier_activation='softmax' or None.")


def sparse_loss(model, keras, *, label_smoothing=0.0, **kwargs):
    """The cross-entropy that fits `model`'s output (probabilities or logits,
    `from_logits`), for a Keras module (Keras 3 or tf_keras): sparse labels,
    or one-hot labels when `label_smoothing` is set."""
    logits = from_logits(model)
    if label_smoothing:
        return keras.losses.CategoricalCrossentropy(
            from_logits=logits, label_smoothing=label_smoothing, **kwargs)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits, **kwargs)
