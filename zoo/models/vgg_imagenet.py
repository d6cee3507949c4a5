"""VGG-11 in torchvision's ImageNet form, with torchvision's weights.

Simonyan & Zisserman 2015 (arXiv:1409.1556), configuration A, as
torchvision's `vgg11` builds it: 3×3 convolutions with bias and ReLU (no
BatchNormalization), five 2×2 max poolings, features average-pooled to 7×7
(an identity at 224×224), then 4096-4096-classes dense layers with dropout
0.5. For 1000 classes it has torchvision's 132,863,336 parameters. Layer
names follow keras.applications' VGG16/VGG19 (`block1_conv1` …
`block5_pool`, `flatten`, `fc1`, `fc2`, `predictions`).

This file is the whole family: its spec, builder, registry entry, the
torch module of each layer (so torchvision's and timm's files load, with
`zoo convert-weights` too) and its weight records.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo import blocks
from zoo import weight_records as records
from zoo.models.vgg import CONFIGS, POOL


@dataclass(frozen=True)
class VGGImageNetSpec:
    config: str                         # a key of zoo.models.vgg.CONFIGS
    hidden: tuple[int, ...] = (4096, 4096)
    pooled_size: int = 7                # torchvision's AdaptiveAvgPool2d((7, 7))


VGG_IMAGENET = {"vgg11": VGGImageNetSpec("A")}


def _conv_names(spec) -> list[tuple[str, int]]:
    """(layer name, index in torchvision's `features`) of each convolution."""
    out, block, conv, index = [], 1, 0, 0
    for item in CONFIGS[spec.config]:
        if item == POOL:
            block, conv, index = block + 1, 0, index + 1
            continue
        conv += 1
        out.append((f"block{block}_conv{conv}", index))
        index += 2                      # conv, ReLU
    return out


def stage_names(spec) -> list[str]:
    return [f"block{b}_pool" for b in range(1, CONFIGS[spec.config].count(POOL) + 1)]


def build_vgg_imagenet(spec, ctx, inputs, *, include_top, num_classes, pooling,
                       classifier_activation, dropout_rate):
    """Builds torchvision's ImageNet VGG from its spec."""
    layers = ctx.layers
    x, convs, pools = inputs, iter(_conv_names(spec)), iter(stage_names(spec))
    for item in CONFIGS[spec.config]:
        if item == POOL:
            x = layers.MaxPooling2D(2, strides=2, name=next(pools))(x)
        else:
            name = next(convs)[0]
            x = ctx.conv(item, 3, padding="same", use_bias=True, name=name)(x)
            x = layers.Activation("relu", name=f"{name}_relu")(x)
    if not include_top:
        return blocks.global_pool(ctx, x, pooling)
    return blocks.flatten_head(ctx, x, spec, "vgg11", False, num_classes=num_classes,
                               classifier_activation=classifier_activation,
                               dropout_rate=dropout_rate)


def torch_module(spec, layer: str) -> str | None:
    """torchvision's module name for a layer ("block2_conv1" -> "features.3",
    "fc1" -> "classifier.0", "predictions" -> "classifier.6")."""
    names = {name: f"features.{index}" for name, index in _conv_names(spec)}
    names.update({"fc1": "classifier.0", "fc2": "classifier.3",
                  "predictions": "classifier.6"})
    return names.get(layer)


# The registry entries of this family (zoo.registry collects every module's
# ENTRIES and WEIGHTS).
ENTRIES = [
    dict(name=name, family="vgg", spec=spec, builder=build_vgg_imagenet,
         stage_names=stage_names, default_size=224, min_size=32, default_classes=1000,
         reference=f"Simonyan & Zisserman 2015, arXiv:1409.1556, configuration "
                   f"{spec.config} (torchvision layout)",
         preprocessing="torch", default_dropout=0.5, static_input=True,
         torch_module=torch_module)
    for name, spec in VGG_IMAGENET.items()
]

WEIGHTS = [
    records.torchvision("vgg11", "tv_in1k", "vgg11-8a719046.pth", top1=0.69020,
                        num_params=132_863_336, first_conv="features.0",
                        classifier="classifier.6", recipe="https://github.com/pytorch/"
                        "vision/tree/main/references/classification"),
]
