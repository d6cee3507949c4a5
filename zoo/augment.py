"""Data augmentation from Keras preprocessing layers.

Presets (`none | light | light_erasing | natural | standard | strong`) are
dictionaries of knobs; any knob can be set on its own or override a preset:

    build_augmenter("standard", image_shape=(32, 32, 3), rotation=0.05)

Geometric knobs: ``flip`` (horizontal), ``rotation`` (fraction of a full
turn), ``translation`` and ``zoom`` (fractions of the size), ``crop_padding``
(pixels of zero padding before a random crop back to the input size, the
CIFAR recipe), ``erasing`` (Keras' ``RandomErasing``: a random rectangle of
2-33 % of the image replaced by noise; the value is the layer's ``factor``,
each image erased with a probability drawn from [0, erasing]).  Colour
knobs: ``brightness``, ``contrast`` and, for RGB images only,
``saturation`` and ``hue``.  Images are augmented in [0, 255] before
scaling.
"""

from __future__ import annotations

import keras
from zoo.errors import InputError

PRESETS = {
    "none": {},
    # No flip: mirroring changes what digits, letters and many medical or
    # industrial images mean (benchmarks/flip.py: 500 digits as an npz,
    # 0.9283 with the flip, 0.9517 without, three seeds). `natural` adds it.
    "light": {"translation": 0.1},
    # The recipe's (zoo.recipe): light plus Keras' RandomErasing, still no
    # flip (benchmarks/small_data.py, docs/training.md "Random erasing").
    "light_erasing": {"translation": 0.1, "erasing": 0.5},
    "natural": {"flip": True, "translation": 0.1},
    "standard": {"flip": True, "crop_padding": "eighth", "brightness": 0.1,
                 "contrast": 0.1},
    "strong": {"flip": True, "crop_padding": "eighth", "rotation": 0.05,
               "zoom": 0.1, "brightness": 0.2, "contrast": 0.2,
               "saturation": 0.2, "hue": 0.05},
}
KNOBS = ("flip", "rotation", "translation", "zoom", "crop_padding",
         "brightness", "contrast", "saturation", "hue", "erasing")


def resolve(preset="none", **knobs) -> dict:
    """Merges a preset with individual knobs and checks every value."""
    if isinstance(preset, dict):
        knobs = {**preset, **knobs}
        preset = "none"
    if preset is None:
        preset = "none"
    if preset not in PRESETS:
        raise InputError(f"Unknown augmentation preset {preset!r}; use one of "
                         f"{', '.join(PRESETS)}.")
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise InputError(f"Unknown augmentation knob(s) {', '.join(unknown)}; "
                         f"use {', '.join(KNOBS)}.")
    merged = {**PRESETS[preset], **{k: v for k, v in knobs.items() if v is not None}}
    for key, value in merged.items():
        if key == "flip":
            if not isinstance(value, bool):
                raise InputError(f"flip must be True or False; got {value!r}.")
        elif key == "crop_padding":
            if value != "eighth" and (not isinstance(value, int) or value < 0):
                raise InputError("crop_padding must be a number of pixels >= 0; "
                                 f"got {value!r}.")
        elif not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InputError(f"{key} must be a number in [0, 1]; got {value!r}.")
    return merged


def build_augmenter(preset="none", *, image_shape, seed=None, allow_flip=True,
                    **knobs):
    """Returns a `keras.layers.Pipeline` of random layers, or None for no-op.

    Args:
        preset: "none", "light", "light_erasing", "natural", "standard",
            "strong" or a dict
            of knobs.
        image_shape: (height, width, channels) of the batches it will see.
        seed: int; the same seed gives the same augmentations.
        allow_flip: False for data where mirroring changes the class
            (digits, handwriting); drops the preset's flip.
        **knobs: individual overrides (see module docstring).

    Example:
        >>> aug = build_augmenter("standard", image_shape=(32, 32, 3), seed=1)
        >>> aug(images, training=True)
    """
    config = resolve(preset, **knobs)
    if not allow_flip and "flip" not in knobs:
        config.pop("flip", None)
    layers = _random_layers(config, image_shape, seed)
    if not layers:
        return None
    # keras.layers.Pipeline, not Sequential: inside tf.data it keeps TensorFlow
    # tensors under every backend (a Sequential converts them to the backend).
    return keras.layers.Pipeline(layers, name="augment")


def _random_layers(config, image_shape, seed) -> list:
    """The random layers of a resolved augmentation config, in a fixed order,
    each with its own seed derived from `seed`."""
    h, w, c = image_shape
    L = keras.layers

    def next_seed(i):
        return None if seed is None else seed + i

    layers = []
    if config.get("flip"):
        layers.append(L.RandomFlip("horizontal", seed=next_seed(1)))
    pad = config.get("crop_padding")
    if pad == "eighth":
        pad = max(1, min(h, w) // 8)
    if pad:
        layers.append(L.ZeroPadding2D(pad))
        layers.append(L.RandomCrop(h, w, seed=next_seed(2)))
    if config.get("rotation"):
        layers.append(L.RandomRotation(config["rotation"], fill_mode="constant",
                                       seed=next_seed(3)))
    if config.get("translation"):
        t = config["translation"]
        layers.append(L.RandomTranslation(t, t, fill_mode="constant",
                                          seed=next_seed(4)))
    if config.get("zoom"):
        layers.append(L.RandomZoom(config["zoom"], fill_mode="constant",
                                   seed=next_seed(5)))
    if config.get("brightness"):
        layers.append(L.RandomBrightness(config["brightness"],
                                         value_range=(0, 255), seed=next_seed(6)))
    if config.get("contrast"):
        layers.append(L.RandomContrast(config["contrast"], value_range=(0, 255),
                                       seed=next_seed(7)))
    if c == 3 and config.get("saturation"):
        s = config["saturation"]
        layers.append(L.RandomSaturation((0.5 - s / 2, 0.5 + s / 2),
                                         value_range=(0, 255), seed=next_seed(8)))
    if c == 3 and config.get("hue"):
        layers.append(L.RandomHue(config["hue"], value_range=(0, 255),
                                  seed=next_seed(9)))
    if config.get("erasing"):
        # Last, as in the paper (arXiv:1708.04896): erases what the other
        # layers made.
        layers.append(L.RandomErasing(config["erasing"], value_range=(0, 255),
                                      seed=next_seed(10)))
    return layers


def seed_generators(augmenter) -> list:
    """The seed generators `augmenter`'s random layers draw from inside
    tf.data (TensorFlow's, whatever the Keras backend)."""
    if augmenter is None:
        return []
    generators = []
    for layer in augmenter.layers:
        if not hasattr(layer, "generator"):
            continue
        # Made (once) in TensorFlow, as the layer makes it inside tf.data, so
        # that under the JAX backend it is a TensorFlow variable too.
        layer.backend.set_backend("tensorflow")
        try:
            # Private Keras API, checked on Keras 3.15.1
            # (tests/test_private_apis.py): the layer's own generator.
            generators.append(layer._get_seed_generator("tensorflow"))  # noqa: SLF001
        finally:
            layer.backend.reset()
    return generators


def reseed(generators, seed, index):
    """Sets generator i to the state (16 × seed + i, index), so that what a
    batch draws depends on (seed, index) alone, not on the batches before
    it (zoo.data's exact resume)."""
    import tensorflow as tf
    for i, generator in enumerate(generators):
        state = generator.state
        state.assign(tf.cast(tf.stack([seed * 16 + i, tf.cast(index, tf.int64)]),
                             state.dtype))


def save_grid(images, path, *, augmenter=None, columns=8, seed=None):
    """Writes a PNG grid of (augmented) images; returns the path.

    Args:
        images: array (n, h, w, c) with values in [0, 255].
        path: output .png file (written atomically).
        augmenter: from `build_augmenter`; None shows the images as they are.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from zoo.io import atomic_path

    if augmenter is not None:
        images = augmenter(images, training=True)
    images = np.clip(keras.ops.convert_to_numpy(images), 0, 255).astype("uint8")
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.2))
    for ax, index in zip(np.ravel(axes), range(rows * columns)):
        ax.axis("off")
        if index < n:
            img = images[index]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                      cmap="gray" if img.shape[-1] == 1 else None)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return path
