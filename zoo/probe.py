"""Phase 1 of LP-FT (zoo.transfer): the new classifier, fit by a linear
probe on the frozen backbone's features, and the BatchNormalization
statistics those features are computed with.

`recalibrate_bn` re-estimates the moving statistics on the training images
(AdaBN, Li et al. 2016) when the source's cannot describe them: the first
convolution was adapted from another number of input channels
(zoo.weights.adapt_stem_kernel), so its outputs are a different mix of the
user's channels than the source's were of its own (docs/transfer.md).
"""

from __future__ import annotations

import keras
import numpy as np

from zoo.errors import InputError


def classifier_layer(model):
    """The model's classifier: the last Dense layer."""
    dense = [layer for layer in model.layers
             if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise InputError(f"{model.name} has no Dense classifier to fine-tune; "
                         "build it with include_top=True.")
    return dense[-1]


def reset_head(model, seed=0):
    """Re-initialises the classifier (Glorot-uniform kernel, zero bias)."""
    head = classifier_layer(model)
    init = keras.initializers.GlorotUniform(seed=seed)
    values = [keras.ops.convert_to_numpy(init(head.weights[0].shape))]
    values += [np.zeros(w.shape) for w in head.weights[1:]]
    head.set_weights([v.astype(w.dtype) for v, w in zip(values, head.weights)])
    return head


def _features(model, dataset):
    head = classifier_layer(model)
    extractor = keras.Model(model.inputs, head.input)
    xs, ys = [], []
    for x, y in dataset:
        xs.append(np.asarray(extractor(x, training=False), np.float64))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def linear_probe(model, train_data, val_data=None, *, seed=0) -> dict:
    """Fits the classifier to convergence on frozen features (phase 1).

    Args:
        model: a model whose last Dense layer is the classifier.
        train_data, val_data: tf.data pipelines of (images, labels); the
            backbone runs once over each, in inference mode.

    Returns:
        {"train_accuracy", "val_accuracy" (None without val_data), "C",
         "num_features", "seconds"}
    """
    import time
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    start = time.perf_counter()
    head = classifier_layer(model)
    k = head.weights[0].shape[-1]
    x, y = _features(model, train_data)
    if y.max() >= k:
        raise InputError(f"Labels reach {int(y.max())} but the classifier has "
                         f"{k} outputs.")
    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    xv = yv = None
    if val_data is not None:
        xv, yv = _features(model, val_data)
        xv = scaler.transform(xv)
    best = None
    for c in ((0.01, 0.1, 1.0) if xv is not None and len(yv) else (0.1,)):
        fit = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(xs, y)
        score = fit.score(xv, yv) if xv is not None and len(yv) else fit.score(xs, y)
        if best is None or score > best[0]:
            best = (score, c, fit)
    _, c, fit = best
    # Fold the standardisation into the Dense layer: softmax(W·(x-μ)/σ + b).
    coef = fit.coef_ / scaler.scale_
    intercept = fit.intercept_ - coef @ scaler.mean_
    if coef.shape[0] == 1:                    # sklearn's binary form
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    kernel = np.zeros((x.shape[1], k))
    bias = np.full(k, -1e4 if len(fit.classes_) < k else 0.0)
    kernel[:, fit.classes_] = coef.T
    bias[fit.classes_] = intercept
    head.set_weights([v.astype(w.dtype) for v, w in zip((kernel, bias), head.weights)])
    return {"train_accuracy": float(fit.score(xs, y)),
            "val_accuracy": None if xv is None or not len(yv)
            else float(fit.score(xv, yv)),
            "C": c, "num_features": int(x.shape[1]),
            "seconds": round(time.perf_counter() - start, 2)}


def batch_norms(model) -> list:
    """Every BatchNormalization layer of `model`, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found += batch_norms(layer)
    return found


def recalibrate_bn(model, data) -> int:
    """Sets every BatchNormalization's moving mean and variance to the mean
    of its batch statistics over one pass of `data` in training mode (what
    the layer normalises with while it trains); no weight changes.

    Args:
        model: a Keras model.
        data: a finite tf.data pipeline of (images, labels) batches.

    Returns:
        The number of batches.
    """
    layers = batch_norms(model)
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    count = 0
    try:
        for layer in layers:
            # A frozen BatchNormalization runs in inference mode and would
            # not update its statistics.
            layer.trainable = True
        for images, _ in data:
            count += 1
            for layer in layers:
                # moving ← moving·(n−1)/n + batch/n: the running mean of the
                # n batches seen.
                layer.momentum = (count - 1) / count
            model(images, training=True)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
    if not count:
        raise InputError("recalibrate_bn needs at least one batch of images.")
    return count
