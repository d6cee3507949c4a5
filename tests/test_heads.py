"""zoo.heads: the classifier and the kind of output, read from the graph
(issue #28: a logits model was fine-tuned with a probabilities loss)."""

import keras
import numpy as np
import pytest

import zoo
from zoo import heads
from zoo.errors import InputError


def _cnn(*head):
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                             keras.layers.GlobalAveragePooling2D(), *head])


@pytest.mark.parametrize("model,logits", [
    (lambda: _cnn(keras.layers.Dense(3)), True),
    (lambda: _cnn(keras.layers.Dense(3, activation="softmax")), False),
    (lambda: _cnn(keras.layers.Dense(3), keras.layers.Softmax()), False),
    (lambda: _cnn(keras.layers.Dense(3), keras.layers.Activation("softmax")), False),
    (lambda: _cnn(keras.layers.Dense(3), keras.layers.Dropout(0.1)), True),
    (lambda: zoo.create_model("resnet20", num_classes=3, input_shape=(16, 16, 1)), False),
    (lambda: zoo.create_model("resnet20", num_classes=3, input_shape=(16, 16, 1),
                              classifier_activation=None), True),
    (lambda: zoo.create_model("mobilenet_v1_025", num_classes=3, input_shape=(32, 32, 3),
                              classifier_activation=None), True),
], ids=["dense", "dense-softmax", "softmax-layer", "activation-layer", "dropout",
        "zoo", "zoo-logits", "mobilenet-conv-logits"])
def test_from_logits(model, logits):
    assert heads.from_logits(model()) is logits


def test_loss_fits_the_output():
    loss = heads.sparse_loss(_cnn(keras.layers.Dense(3)), keras)
    assert loss.get_config()["from_logits"] is True
    smoothed = heads.sparse_loss(_cnn(keras.layers.Dense(3, activation="softmax")),
                                 keras, label_smoothing=0.1)
    assert isinstance(smoothed, keras.losses.CategoricalCrossentropy)
    assert smoothed.get_config()["from_logits"] is False


def test_other_output_activations_are_refused():
    with pytest.raises(InputError, match="sigmoid; training, fine-tuning and compression need class "
                                         r"probabilities \(softmax\) or logits"):
        heads.from_logits(_cnn(keras.layers.Dense(3, activation="sigmoid")))


def test_feature_extractor_has_no_classifier():
    model = zoo.create_model("resnet20", include_top=False, pooling="avg",
                             input_shape=(16, 16, 1))
    assert heads.classifier_name(model) is None and heads.from_logits(model) is False
    x = np.zeros((1, 16, 16, 1), np.float32)
    assert model(x).shape == (1, 64)
