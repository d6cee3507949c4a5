"""MobileNet v1 and v2, layer for layer as keras.applications builds them.

Layer names, paddings, BN settings and the classifier match
keras.applications.MobileNet / MobileNetV2, so their weight files load.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo import blocks
from zoo import weight_records as records


@dataclass(frozen=True)
class MobileNetSpec:
    version: int        # 1 | 2
    alpha: float        # width multiplier
    cifar: bool = False  # stride 1 in the stem and the 24-filter stage (v2)


# (pointwise filters, stride) of MobileNet v1's 13 depthwise-separable blocks.
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2),
             (1024, 1))

# (expansion, output filters, repeats, first stride) of MobileNetV2's stages.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# keras.applications' positional arguments of MobileNet and MobileNetV2
# (zoo.applications reads them as ModelEntry.keras_signature).
MOBILENET_ORDER = ("input_shape", "alpha", "depth_multiplier", "dropout",
                   "include_top", "weights", "input_tensor", "pooling", "classes",
                   "classifier_activation", "name")
MOBILENET_V2_ORDER = ("input_shape", "alpha", "include_top", "weights",
                      "input_tensor", "pooling", "classes", "classifier_activation",
                      "name")


MOBILENETS = {
    "mobilenet_v1_025": MobileNetSpec(1, 0.25),
    "mobilenet_v1_050": MobileNetSpec(1, 0.50),
    "mobilenet_v1_075": MobileNetSpec(1, 0.75),
    "mobilenet_v1_100": MobileNetSpec(1, 1.0),
    "mobilenet_v2_050": MobileNetSpec(2, 0.50),
    "mobilenet_v2_100": MobileNetSpec(2, 1.0),
    "mobilenet_v2_140": MobileNetSpec(2, 1.4),
    # The common CIFAR adaptation of MobileNetV2 (total stride 8 instead of
    # 32), so 28–32 px inputs keep a 4×4 final feature map; BN momentum 0.9.
    "mobilenet_v2_050_cifar": MobileNetSpec(2, 0.5, cifar=True),
}


def make_divisible(value, divisor=8):
    """Rounds channels to a multiple of `divisor`, never dropping below 90 %."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _correct_pad(x, kernel_size=3):
    # keras.applications' padding for stride-2 "valid" convolutions: one
    # pixel less at the start when the input size is even.
    size = x.shape[1:3]
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    c = kernel_size // 2
    return ((c - adjust[0], c), (c - adjust[1], c))


def _v1_body(ctx, x, alpha):
    layers = ctx.layers
    x = ctx.conv(int(32 * alpha), 3, strides=2, padding="same",
                 name="conv1")(x)
    x = ctx.bn(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, stride) in enumerate(V1_BLOCKS, start=1):
        if stride > 1:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)),
                                     name=f"conv_pad_{block_id}")(x)
        x = ctx.depthwise(3, strides=stride,
                          padding="same" if stride == 1 else "valid",
                          name=f"conv_dw_{block_id}")(x)
        x = ctx.bn(name=f"conv_dw_{block_id}_bn")(x)
        x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
        x = ctx.conv(int(filters * alpha), 1, padding="same",
                     name=f"conv_pw_{block_id}")(x)
        x = ctx.bn(name=f"conv_pw_{block_id}_bn")(x)
        x = layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)
    return x


def _inverted_residual(ctx, x, expansion, stride, filters, alpha, block_id,
                       momentum=0.999):
    layers = ctx.layers
    in_channels = x.shape[-1]
    out_channels = make_divisible(int(filters * alpha), 8)
    inputs = x
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    bn = dict(epsilon=1e-3, momentum=momentum)
    if block_id:
        x = ctx.conv(expansion * in_channels, 1, padding="same",
                     name=f"{prefix}expand")(x)
        x = ctx.bn(name=f"{prefix}expand_BN", **bn)(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    if stride == 2:
        x = layers.ZeroPadding2D(_correct_pad(x), name=f"{prefix}pad")(x)
    x = ctx.depthwise(3, strides=stride,
                      padding="same" if stride == 1 else "valid",
                      name=f"{prefix}depthwise")(x)
    x = ctx.bn(name=f"{prefix}depthwise_BN", **bn)(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = ctx.conv(out_channels, 1, padding="same", name=f"{prefix}project")(x)
    x = ctx.bn(name=f"{prefix}project_BN", **bn)(x)
    if in_channels == out_channels and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _v2_body(ctx, x, alpha, cifar=False):
    layers = ctx.layers
    # keras.applications' 0.999 needs thousands of steps before the moving
    # statistics are usable; the CIFAR form trains for a few epochs.
    bn = dict(epsilon=1e-3, momentum=0.9 if cifar else 0.999)
    x = ctx.conv(make_divisible(32 * alpha, 8), 3, strides=1 if cifar else 2,
                 padding="same", name="Conv1")(x)
    x = ctx.bn(name="bn_Conv1", **bn)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    block_id = 0
    for expansion, filters, repeats, stride in V2_STAGES:
        if cifar and filters == 24:
            stride = 1
        for i in range(repeats):
            x = _inverted_residual(ctx, x, expansion, stride if i == 0 else 1,
                                   filters, alpha, block_id, bn["momentum"])
            block_id += 1
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = ctx.conv(last, 1, name="Conv_1")(x)
    x = ctx.bn(name="Conv_1_bn", **bn)(x)
    return layers.ReLU(6.0, name="out_relu")(x)


def stage_names(spec) -> list[str]:
    """Layers whose outputs end each resolution (strides 2, 4, 8, 16, 32)."""
    if spec.version == 1:
        return ["conv1_relu", "conv_pw_3_relu", "conv_pw_5_relu",
                "conv_pw_11_relu", "conv_pw_13_relu"]
    return ["expanded_conv_project_BN", "block_2_add", "block_5_add",
            "block_12_add", "out_relu"]


def build_mobilenet(spec, ctx, inputs, *, include_top, num_classes, pooling,
                    classifier_activation, dropout_rate):
    """Builds MobileNet v1 or v2 from its spec (see module docstring)."""
    layers = ctx.layers
    alpha = spec.alpha
    if spec.version == 1:
        x = _v1_body(ctx, inputs, alpha)
        if include_top:
            # keras.applications' v1 head: a 1×1 conv instead of a Dense.
            x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
            x = layers.Dropout(dropout_rate, name="dropout")(x)
            x = ctx.conv(num_classes, 1, padding="same", use_bias=True,
                         name="conv_preds")(x)
            x = layers.Reshape((num_classes,), name="reshape_2")(x)
            return layers.Activation(classifier_activation, name="predictions",
                                     dtype=ctx.head_dtype)(x)
    else:
        x = _v2_body(ctx, inputs, alpha, spec.cifar)
        return blocks.classifier_head(
            ctx, x, include_top=include_top, num_classes=num_classes, pooling=pooling,
            classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return blocks.global_pool(ctx, x, pooling)


def _imagenet_record(name, spec):
    """keras.applications' ImageNet files (one per input size, with and
    without the classifier; it publishes no MD5 for them)."""
    if spec.version == 1:
        text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[spec.alpha]
        stems = {rows: (f"mobilenet_{text}_{rows}_tf", "mobilenet/")
                 for rows in (128, 160, 192, 224)}
        suffixes, top1 = ("", "_no_top"), {1.0: 0.704}
    else:
        stems = {rows: ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
                        f"{float(spec.alpha)}_{rows}", "mobilenet_v2/")
                 for rows in (96, 128, 160, 192, 224)}
        suffixes, top1 = ("", "_no_top"), {1.0: 0.713}
    files = tuple(
        records.WeightFile(f"{stem}{suffix}.h5",
                           f"{records.KERAS_APPLICATIONS}{folder}{stem}{suffix}.h5",
                           None, include_top=not suffix, rows=rows)
        for rows, (stem, folder) in stems.items() for suffix in suffixes)
    return records.WeightRecord(
        arch=name, tag="imagenet", source="keras.applications", files=files,
        preprocessing="tf", num_classes=1000, input_shape=(224, 224, 3),
        first_conv="conv1" if spec.version == 1 else "Conv1",
        classifier="conv_preds" if spec.version == 1 else "predictions",
        dataset="ImageNet-1k",
        metrics={"top1": top1[spec.alpha]} if spec.alpha in top1 else {},
        licence="as keras.applications publishes them",
        card="https://keras.io/api/applications/mobilenet/")


def _reference(spec) -> str:
    paper = ("Howard et al. 2017, arXiv:1704.04861" if spec.version == 1
             else "Sandler et al. 2018, arXiv:1801.04381")
    return paper + (" (CIFAR form: stride 1 in the stem and second stage)" if spec.cifar
                    else " (keras.applications layout)")


# What the family adds to the wide search space (ModelEntry.search).
SEARCH = {"width_multiplier": {"values": [0.5, 0.75, 1.0]},
          "dropout": {"values": [0.001, 0.1, 0.2]}}

# The registry entries of this family (zoo.registry collects them).
ENTRIES = [
    dict(name=name, family="mobilenet", spec=spec, builder=build_mobilenet,
         stage_names=stage_names, default_size=32 if spec.cifar else 224,
         min_size=8 if spec.cifar else 32, default_classes=10 if spec.cifar else 1000,
         reference=_reference(spec), preprocessing="tf", width_attr="alpha",
         # keras.applications' MobileNet (v1) default; v2 has no dropout.
         default_dropout=1e-3 if spec.version == 1 else 0.0, search=SEARCH,
         keras_signature=MOBILENET_ORDER if spec.version == 1 else MOBILENET_V2_ORDER,
         # Depthwise convolutions train slower in bf16 on CPUs (0.85×
         # measured, docs/benchmarks.md): zoo.training.fast_path keeps float32.
         bf16_training=False)
    for name, spec in MOBILENETS.items()
]

# Every pretrained weight of this family (zoo.registry collects them).
WEIGHTS = [_imagenet_record(name, spec) for name, spec in MOBILENETS.items()
           if not spec.cifar]
