"""AlexNet-style networks.

``alexnet`` is torchvision's single-tower AlexNet (Krizhevsky 2014, "One
weird trick"): conv 64-192-384-256-256, features pooled to 6×6, then
dropout-4096-dropout-4096-classes; for 1000 classes it has exactly
torchvision's 61,100,840 parameters.

``alexnet_cifar`` keeps that shape (five convolutions, overlapping 3×3/2
max-pooling, two dropout-regularised hidden dense layers) sized for 32×32
inputs: convolutions of 64 and 128 5×5 then 256-256-128 3×3 filters at
stride 1, BatchNormalization after each convolution (which makes it train
reliably in a few epochs), 3×3 features and a 512-512 classifier (2.2 M
parameters, small enough to ship a checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo import blocks
from zoo import weight_records as records


@dataclass(frozen=True)
class ConvSpec:
    filters: int
    kernel: int
    stride: int
    padding: int
    pool: bool          # 3×3 stride-2 max-pool after the activation


@dataclass(frozen=True)
class AlexNetSpec:
    convs: tuple[ConvSpec, ...]
    hidden: tuple[int, ...]
    pooled_size: int | None     # adaptive average pool to this size, or None
    batch_norm: bool = False

    @property
    def cifar(self) -> bool:
        """The CIFAR form (32 × 32 inputs, no adaptive pooling), as
        MobileNetSpec.cifar."""
        return self.pooled_size is None


ALEXNETS = {
    "alexnet": AlexNetSpec(
        convs=(ConvSpec(64, 11, 4, 2, True), ConvSpec(192, 5, 1, 2, True),
               ConvSpec(384, 3, 1, 1, False), ConvSpec(256, 3, 1, 1, False),
               ConvSpec(256, 3, 1, 1, True)),
        hidden=(4096, 4096), pooled_size=6),
    "alexnet_cifar": AlexNetSpec(
        convs=(ConvSpec(64, 5, 1, 2, True), ConvSpec(128, 5, 1, 2, True),
               ConvSpec(256, 3, 1, 1, False), ConvSpec(256, 3, 1, 1, False),
               ConvSpec(128, 3, 1, 1, True)),
        hidden=(512, 512), pooled_size=None, batch_norm=True),
}


def feature_size(spec, size: int) -> int:
    """Spatial size of the last feature map for an input of `size` pixels."""
    for conv in spec.convs:
        size = (size + 2 * conv.padding - conv.kernel) // conv.stride + 1
        if conv.pool:
            size = (size - 3) // 2 + 1
    return size


def stage_names(spec) -> list[str]:
    return [f"features{i + 1}_pool" for i, c in enumerate(spec.convs) if c.pool]


def build_alexnet(spec, ctx, inputs, *, include_top, num_classes, pooling,
                  classifier_activation, dropout_rate):
    """Builds an AlexNet-style network from its spec."""
    layers = ctx.layers
    x = inputs
    for i, conv in enumerate(spec.convs, start=1):
        name = f"features{i}"
        if conv.padding:
            x = layers.ZeroPadding2D(conv.padding, name=f"{name}_pad")(x)
        x = ctx.conv(conv.filters, conv.kernel, strides=conv.stride,
                     use_bias=not spec.batch_norm, name=f"{name}_conv")(x)
        if spec.batch_norm:
            x = ctx.bn(name=f"{name}_bn", epsilon=1e-5, momentum=0.9)(x)
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        if conv.pool:
            x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    if not include_top:
        return blocks.global_pool(ctx, x, pooling)
    # torchvision's AdaptiveAvgPool2d((6, 6)), an identity at 224×224.
    return blocks.flatten_head(ctx, x, spec, "alexnet", True, num_classes=num_classes,
                               classifier_activation=classifier_activation,
                               dropout_rate=dropout_rate)


def _min_size(spec) -> int:
    return next(s for s in range(1, 512) if feature_size(spec, s) >= 1)


def torch_module(spec, layer: str) -> str | None:
    """torchvision's module name for a layer of the ImageNet AlexNet
    ("features2_conv" -> "features.3", "predictions" -> "classifier.6")."""
    names, index = {}, 0
    for i, conv in enumerate(spec.convs, start=1):
        names[f"features{i}_conv"] = f"features.{index}"
        index += 2 + conv.pool                  # conv, ReLU (, max-pool)
    names.update({"fc1": "classifier.1", "fc2": "classifier.4",
                  "predictions": "classifier.6"})
    return names.get(layer)


# The registry entries of this family (zoo.registry collects every module's
# ENTRIES): what users and the factory need to know about each model.
_REFERENCES = {
    "alexnet": "Krizhevsky 2014, arXiv:1404.5997 (torchvision single-tower layout)",
    "alexnet_cifar": "AlexNet-style network for 32×32 inputs (see zoo/models/alexnet.py)",
}
ENTRIES = [
    dict(name=name, family="alexnet", spec=spec, builder=build_alexnet,
         stage_names=stage_names,
         default_size=32 if spec.cifar else 224,
         min_size=_min_size(spec),
         default_classes=10 if spec.cifar else 1000,
         reference=_REFERENCES[name],
         preprocessing="tf" if spec.cifar else "torch",
         # The classifier flattens the feature map: its size must be known.
         default_dropout=0.5, static_input=True,
         torch_module=None if spec.cifar else torch_module)
    for name, spec in ALEXNETS.items()
]

# Every pretrained weight of this family (zoo.registry collects them).
WEIGHTS = [records.torchvision(
    "alexnet", "tv_in1k", "alexnet-owt-7be5be79.pth", top1=0.56522,
    num_params=61_100_840, first_conv="features.0", classifier="classifier.6",
    recipe="https://github.com/pytorch/vision/tree/main/references/classification")]
