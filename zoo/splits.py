"""Which images train and which validate: the stratified validation split,
the folds of k-fold cross-validation, and the shards of a multi-process
run (their arguments checked)."""

from __future__ import annotations

import numpy as np

from zoo.data_checks import DataError
from zoo.recipe import RECIPE


def train_val_split(x, y, validation_split, seed, fold=None):
    """Stratified train/validation split: every class in both parts. With
    `fold=(i, k)`, the split is fold i of a stratified k-fold partition.
    `validation_split` None is the recipe's rule (zoo.recipe.Recipe.holdout)."""
    if fold is not None:
        return fold_split(x, y, fold, seed)
    if validation_split is None:
        validation_split = RECIPE.holdout(len(y))
    if not validation_split:
        return x, y, x[:0], y[:0]
    from sklearn.model_selection import train_test_split
    counts = np.bincount(y.astype(np.int64))
    single = np.flatnonzero(counts == 1)
    if len(single):
        raise DataError(
            f"Class(es) {', '.join(map(str, single[:10]))} have a single training "
            "image: a stratified validation split needs at least two per class "
            "(one to train on, one to validate). Add images, drop those "
            "classes, or pass validation_split 0 (--validation-split 0).")
    classes = int((counts > 0).sum())
    n_val = max(int(np.ceil(validation_split * len(y))), classes)
    if len(y) - n_val < classes:
        raise DataError(f"{len(y)} training images cannot hold {classes} classes in "
                        f"both a training and a validation part; lower "
                        f"validation_split ({validation_split}).")
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=n_val, random_state=seed,
                                          stratify=y)
    return xtr, ytr, xva, yva


def limit_subset(x, y, limit, seed):
    """At most `limit` of the training images: a seeded random subset (a
    source listed class by class would otherwise keep its first classes).
    A subset that lacks one of the split's classes is refused: the model
    could never predict that class, and its test images would all count
    as errors."""
    if not limit or limit >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(seed).permutation(len(y))[:limit])
    classes = np.unique(y)
    missing = np.setdiff1d(classes, np.unique(y[keep]))
    if len(missing):
        raise DataError(f"limit={limit} keeps {limit} of {len(y)} training images, "
                        f"which lack class(es) {', '.join(map(str, missing[:10]))} of "
                        f"the {len(classes)}: the model could never predict them. "
                        "Raise the limit (at least one image per class; a few "
                        "per class to learn anything) or leave it out.")
    return x[keep], y[keep]


def fold_split(x, y, fold, seed):
    """Fold i of scikit-learn's stratified k-fold partition (shuffled with
    `seed`): the other k - 1 folds train, fold i validates. The k
    validation parts cover every training image exactly once."""
    from sklearn.model_selection import StratifiedKFold
    i, k = fold
    counts = np.bincount(np.asarray(y).astype(np.int64))
    present = np.flatnonzero(counts)
    smallest = present[np.argmin(counts[present])]
    if counts[smallest] < k:
        raise DataError(f"{k}-fold cross-validation needs at least {k} training "
                        f"images of every class; class {smallest} has "
                        f"{counts[smallest]}. Use fewer folds (--folds).")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    train, val = list(folds.split(np.zeros(len(y)), y))[i]
    return x[train], y[train], x[val], y[val]


def _check_part(value, name, wording, least):
    """`value` is None or (i, n) with n >= `least` and 0 <= i < n."""
    if value is None:
        return
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    if not ok or value[1] < least or not 0 <= value[0] < value[1]:
        raise DataError(f"{name} must be {wording}; got {value!r}.")


def check_fold(fold):
    _check_part(fold, "fold", "(i, k) with k >= 2 and 0 <= i < k", 2)


def check_shard(shard, batch_size):
    _check_part(shard, "shard", "(i, n) with 0 <= i < n", 1)
    if shard is None:
        return
    if batch_size % shard[1]:
        raise DataError(f"The global batch size {batch_size} must be a multiple of "
                        f"the {shard[1]} processes, so that each takes an equal part; "
                        f"use --batch-size {batch_size - batch_size % shard[1] or shard[1]}.")
