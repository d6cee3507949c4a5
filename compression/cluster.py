"""Weight clustering of zoo models with TF-MOT."""

from __future__ import annotations

import numpy as np

from . import bridge, finetune
from .options import check_clusters, check_init
from .prune import select_layers
from zoo.errors import InputError

_INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR",
          "density": "DENSITY_BASED", "random": "RANDOM"}


def cluster(model, data, *, clusters=16, init="kmeans++", preserve_sparsity=False,
            steps=None, epochs=None, learning_rate=1e-5, layers=None, exclude=(),
            verbose=0):
    """Clusters the kernels of a Keras 3 model into `clusters` shared values.

    The model is rebuilt under tf_keras, the selected layers (same default
    choice as pruning) are wrapped with `cluster_weights`, fine-tuned for
    `steps` optimizer steps or `epochs` passes (compression.finetune),
    stripped and rebuilt under Keras 3.  With `preserve_sparsity=True`
    zeros stay zero (sparsity-preserving clustering, for pruned models).

    Returns:
        (keras.Model, {"layers": {name: unique values in the kernel}, ...})
    """
    clusters = check_clusters(clusters)
    check_init(init)
    total = finetune.steps_for(data, "cluster", steps=steps, epochs=epochs)
    import tensorflow_model_optimization as tfmot
    tfk = bridge.tf_keras_module()
    c = tfmot.clustering.keras
    twin = bridge.to_tf_keras(model)
    chosen = select_layers(twin, include=layers, exclude=exclude)
    if not chosen:
        raise InputError(f"No clusterable layer selected in {model.name}.")
    params = {"number_of_clusters": clusters,
              "cluster_centroids_init": getattr(c.CentroidInitialization, _INITS[init])}
    if preserve_sparsity:
        params["preserve_sparsity"] = True

    def wrap(layer):
        return c.cluster_weights(layer, **params) if layer.name in chosen else layer

    clustered = tfk.models.clone_model(twin, clone_function=wrap)
    total = finetune.fit(clustered, tfk, data, total, learning_rate, verbose=verbose)
    stripped = c.strip_clustering(clustered)
    result = bridge.to_keras(stripped, like=model)
    unique = {n: int(np.unique(np.asarray(stripped.get_layer(n).kernel)).size)
              for n in chosen}
    return result, {"layers": unique, "clusters": clusters, "init": init,
                    "preserve_sparsity": preserve_sparsity, "steps": total}
