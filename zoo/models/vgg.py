"""VGG in its CIFAR form: the plain "stacked 3×3 convolutions + max pooling"
baseline.

Simonyan & Zisserman 2015 (arXiv:1409.1556), configurations A, B, D and E
(VGG-11/13/16/19), as the standard CIFAR-10 networks build them (e.g.
kuangliu/pytorch-cifar): every 3×3 convolution (with bias) is followed by
BatchNormalization and ReLU, five 2×2 max poolings bring 32×32 inputs to a
1×1×512 map, and a single dense layer classifies it (no 4096-wide hidden
layers). Global average pooling before the classifier is the identity at
32×32 and lets larger inputs through. Trainable parameters at 10 classes
equal that reference's: 9,231,114 / 9,416,010 / 14,728,266 / 20,040,522.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo import blocks

POOL = "M"
CONFIGS = {
    "A": (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "B": (64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "D": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
          512, 512, 512, POOL),
    "E": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512,
          POOL, 512, 512, 512, 512, POOL),
}


@dataclass(frozen=True)
class VGGSpec:
    config: str                     # a key of CONFIGS (the paper's column)

    def blocks(self) -> list[list[int]]:
        """Convolution widths of each block (a block ends with a pooling)."""
        out, current = [], []
        for item in CONFIGS[self.config]:
            if item == POOL:
                out.append(current)
                current = []
            else:
                current.append(item)
        return out


VGGS = {"vgg11_cifar": VGGSpec("A"), "vgg13_cifar": VGGSpec("B"),
        "vgg16_cifar": VGGSpec("D"), "vgg19_cifar": VGGSpec("E")}


def stage_names(spec) -> list[str]:
    return [f"block{b}_pool" for b in range(1, len(spec.blocks()) + 1)]


def build_vgg(spec, ctx, inputs, *, include_top, num_classes, pooling,
              classifier_activation, dropout_rate):
    """Builds a CIFAR-form VGG from its spec."""
    layers = ctx.layers
    x = inputs
    for b, widths in enumerate(spec.blocks(), start=1):
        for c, width in enumerate(widths, start=1):
            name = f"block{b}_conv{c}"
            x = ctx.conv(width, 3, padding="same", use_bias=True, name=name)(x)
            x = ctx.bn(name=f"{name}_bn", epsilon=1e-5, momentum=0.9)(x)
            x = layers.Activation("relu", name=f"{name}_relu")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    return blocks.classifier_head(
        ctx, x, include_top=include_top, num_classes=num_classes, pooling=pooling,
        classifier_activation=classifier_activation, dropout_rate=dropout_rate)


# The registry entries of this family (zoo.registry collects every module's
# ENTRIES; this file is all it takes to add the family).
ENTRIES = [
    dict(name=name, family="vgg", spec=spec, builder=build_vgg, stage_names=stage_names,
         default_size=32, min_size=32, default_classes=10,
         reference=f"Simonyan & Zisserman 2015, arXiv:1409.1556, configuration "
                   f"{spec.config} (CIFAR form: BatchNormalization, one dense layer)",
         preprocessing="tf")
    for name, spec in VGGS.items()
]
