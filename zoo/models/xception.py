"""Xception (Chollet 2017), layer for layer as keras.applications builds it.

The unnamed residual layers of keras.applications get stable names here
(`blockN_residual_conv`, `blockN_residual_bn`, `blockN_add`); the graph and
the order of weights are the same, so its weight files load.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo import blocks
from zoo import weight_records as records


@dataclass(frozen=True)
class XceptionSpec:
    entry_filters: tuple[int, ...] = (128, 256, 728)
    middle_blocks: int = 8
    middle_filters: int = 728
    exit_filters: tuple[int, int] = (728, 1024)
    final_filters: tuple[int, int] = (1536, 2048)


XCEPTIONS = {"xception": XceptionSpec()}


def _downsampling_block(ctx, x, filters, block, *, first):
    """Two separable convs + strided max-pool, with a 1×1 conv shortcut."""
    layers = ctx.layers
    f1, f2 = filters if isinstance(filters, tuple) else (filters, filters)
    residual = ctx.conv(f2, 1, strides=2, padding="same",
                        name=f"block{block}_residual_conv")(x)
    residual = ctx.bn(name=f"block{block}_residual_bn")(residual)
    # The first block of the entry flow starts right after an activation and
    # keras.applications names its inner activation "sepconv2_act".
    x = blocks.separable_block(ctx, x, f1, name=f"block{block}_sepconv1",
                               pre_activation=not first)
    x = blocks.separable_block(ctx, x, f2, name=f"block{block}_sepconv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same",
                            name=f"block{block}_pool")(x)
    return layers.Add(name=f"block{block}_add")([x, residual])


def stage_names(spec) -> list[str]:
    return ["block1_conv2_act", "block2_add", "block3_add",
            f"block{4 + spec.middle_blocks}_add", "block14_sepconv2_act"]


def build_xception(spec, ctx, inputs, *, include_top, num_classes, pooling,
                   classifier_activation, dropout_rate):
    """Builds Xception from its spec."""
    layers = ctx.layers
    x = ctx.conv(32, 3, strides=2, name="block1_conv1")(inputs)
    x = ctx.bn(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = ctx.conv(64, 3, name="block1_conv2")(x)
    x = ctx.bn(name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)

    block = 2
    for filters in spec.entry_filters:
        x = _downsampling_block(ctx, x, filters, block, first=(block == 2))
        block += 1
    for _ in range(spec.middle_blocks):
        residual = x
        for k in (1, 2, 3):
            x = blocks.separable_block(ctx, x, spec.middle_filters,
                                       name=f"block{block}_sepconv{k}")
        x = layers.Add(name=f"block{block}_add")([x, residual])
        block += 1
    x = _downsampling_block(ctx, x, spec.exit_filters, block, first=False)
    block += 1
    for k, filters in enumerate(spec.final_filters, start=1):
        x = ctx.separable(filters, 3, padding="same",
                          name=f"block{block}_sepconv{k}")(x)
        x = ctx.bn(name=f"block{block}_sepconv{k}_bn")(x)
        x = layers.Activation("relu", name=f"block{block}_sepconv{k}_act")(x)
    return blocks.classifier_head(
        ctx, x, include_top=include_top, num_classes=num_classes,
        pooling=pooling, classifier_activation=classifier_activation,
        dropout_rate=dropout_rate)


_STEM = "xception_weights_tf_dim_ordering_tf_kernels"
# Every pretrained weight of this family (zoo.registry collects them):
# keras.applications' ImageNet files and the top-1 keras.io publishes.
WEIGHTS = [records.WeightRecord(
    arch="xception", tag="imagenet", source="keras.applications",
    files=tuple(records.WeightFile(f"{_STEM}{suffix}.h5",
                                   f"{records.KERAS_APPLICATIONS}xception/{_STEM}{suffix}.h5",
                                   f"md5:{md5}", include_top=not suffix)
                for suffix, md5 in (("", "0a58e3b7378bc2990ea3b43d5981f1f6"),
                                    ("_notop", "b0042744bf5b25fce3cb969f33bebb97"))),
    preprocessing="tf", num_classes=1000, input_shape=(299, 299, 3),
    first_conv="block1_conv1", classifier="predictions", dataset="ImageNet-1k",
    metrics={"top1": 0.790}, licence="as keras.applications publishes them",
    card="https://keras.io/api/applications/xception/")]


# The registry entries of this family (zoo.registry collects them).
ENTRIES = [
    dict(name=name, family="xception", spec=spec, builder=build_xception,
         stage_names=stage_names, default_size=299, min_size=71, default_classes=1000,
         reference="Chollet 2017, arXiv:1610.02357 (keras.applications layout)",
         preprocessing="tf")
    for name, spec in XCEPTIONS.items()
]
