"""ResNet v1/v2 (ImageNet and CIFAR forms) and ResNeXt: one table, one builder.

Three layouts share the builder:

* ``keras``    – keras.applications ResNet50/101/152: biases on every conv,
  stride on the first 1×1 convolution, BN epsilon 1.001e-5.  Same layer
  names, so keras.applications weight files load.
* ``keras_v2`` – keras.applications ResNet50V2/101V2/152V2 (pre-activation,
  stride on the last block of a stage).
* ``torch``    – torchvision ResNet-18/34/50/101/152 and ResNeXt ("v1.5": no
  biases, stride on the 3×3 convolution; the bottleneck ResNets are named
  ``tv_resnet50/101/152`` as in timm, since ``resnet50`` is
  keras.applications'), and the CIFAR networks of He et al. 2016
  §4.2 (option-A shortcuts) and Xie et al. 2017 (ResNeXt-29).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zoo import blocks
from zoo import weight_records as records


@dataclass(frozen=True)
class ResNetSpec:
    block: str                          # "basic" | "bottleneck"
    depths: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512)   # planes per stage
    cardinality: int = 1                # > 1 makes it a ResNeXt
    group_width: int = 64               # torchvision's base_width
    stem: str = "imagenet"              # "imagenet" | "cifar"
    stem_width: int = 64
    layout: str = "torch"               # "torch" | "keras" | "keras_v2"
    shortcut: str = "projection"        # "projection" | "A"

    @property
    def cifar(self) -> bool:
        """The CIFAR form (32 × 32 inputs), as MobileNetSpec.cifar."""
        return self.stem == "cifar"

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def num_features(self) -> int:
        return self.widths[-1] * self.expansion

    def stage_strides(self) -> tuple[int, ...]:
        return (1,) + (2,) * (len(self.depths) - 1)


def _v1(depths):
    return ResNetSpec("bottleneck", depths, layout="keras")


def _v2(depths):
    return ResNetSpec("bottleneck", depths, layout="keras_v2")


def _cifar(n):
    return ResNetSpec("basic", (n, n, n), widths=(16, 32, 64), stem="cifar",
                      stem_width=16, shortcut="A")


def _resnext29(cardinality):
    return ResNetSpec("bottleneck", (3, 3, 3), widths=(64, 128, 256),
                      cardinality=cardinality, group_width=64, stem="cifar")


RESNETS = {
    "resnet18": ResNetSpec("basic", (2, 2, 2, 2)),
    "resnet34": ResNetSpec("basic", (3, 4, 6, 3)),
    "resnet50": _v1((3, 4, 6, 3)),
    "tv_resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3)),
    "tv_resnet101": ResNetSpec("bottleneck", (3, 4, 23, 3)),
    "tv_resnet152": ResNetSpec("bottleneck", (3, 8, 36, 3)),
    "resnet101": _v1((3, 4, 23, 3)),
    "resnet152": _v1((3, 8, 36, 3)),
    "resnet50_v2": _v2((3, 4, 6, 3)),
    "resnet101_v2": _v2((3, 4, 23, 3)),
    "resnet152_v2": _v2((3, 8, 36, 3)),
    "resnet20": _cifar(3),
    "resnet32": _cifar(5),
    "resnet44": _cifar(7),
    "resnet56": _cifar(9),
    "resnet110": _cifar(18),
}

RESNEXTS = {
    "resnext50_32x4d": ResNetSpec("bottleneck", (3, 4, 6, 3), cardinality=32,
                                  group_width=4),
    "resnext101_32x8d": ResNetSpec("bottleneck", (3, 4, 23, 3),
                                   cardinality=32, group_width=8),
    "resnext29_8x64d": _resnext29(8),
    "resnext29_16x64d": _resnext29(16),
}


def _stem(ctx, x, spec):
    layers = ctx.layers
    if spec.cifar:
        return blocks.conv_bn_act(ctx, x, spec.stem_width, 3, name="conv1")
    keras_layout = spec.layout.startswith("keras")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = ctx.conv(spec.stem_width, 7, strides=2, use_bias=keras_layout,
                 name="conv1_conv")(x)
    if spec.layout != "keras_v2":
        eps, momentum = (1.001e-5, 0.99) if keras_layout else (1e-5, 0.9)
        x = ctx.bn(name="conv1_bn", epsilon=eps, momentum=momentum)(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def _stage(ctx, x, spec, index, planes, depth, stride):
    name = f"conv{index + 2}"
    filters = planes * spec.expansion
    first = sum(spec.depths[:index])           # blocks before this stage
    for i in range(depth):
        block = f"{name}_block{i + 1}"
        drop_path = ctx.block_drop_path(first + i, sum(spec.depths))
        if spec.layout == "keras_v2":
            # keras.applications puts the stride on the last block of a stage.
            s = stride if i == depth - 1 else 1
            x = blocks.preact_bottleneck_block(ctx, x, planes, s,
                                               conv_shortcut=(i == 0),
                                               name=block, drop_path=drop_path)
        elif spec.block == "basic":
            x = blocks.basic_block(ctx, x, filters, stride if i == 0 else 1,
                                   shortcut_kind=spec.shortcut, name=block,
                                   drop_path=drop_path)
        elif spec.layout == "keras":
            x = blocks.bottleneck_block(
                ctx, x, filters, stride if i == 0 else 1, width=planes,
                stride_in_1x1=True, use_bias=True,
                shortcut_kind="conv" if i == 0 else "identity", name=block,
                drop_path=drop_path, epsilon=1.001e-5, momentum=0.99)
        else:
            width = int(planes * spec.group_width / 64) * spec.cardinality
            x = blocks.bottleneck_block(
                ctx, x, filters, stride if i == 0 else 1, width=width,
                groups=spec.cardinality, shortcut_kind=spec.shortcut,
                name=block, drop_path=drop_path)
    return x


def stage_names(spec) -> list[str]:
    """Layers whose outputs end the stem and each stage."""
    if spec.cifar:
        stem = "conv1_relu"
    else:
        stem = "pool1_pool"
    names = [stem] + [f"conv{i + 2}_block{d}_out" for i, d in enumerate(spec.depths)]
    if spec.layout == "keras_v2":
        names[-1] = "post_relu"
    return names


def build_resnet(spec, ctx, inputs, *, include_top, num_classes, pooling,
                 classifier_activation, dropout_rate):
    """Builds a ResNet/ResNeXt body and head from its spec.

    Args:
        spec: ResNetSpec.
        ctx: blocks.Context with the Keras module and construction choices.
        inputs: the model's input tensor.

    Returns:
        The output tensor.
    """
    x = _stem(ctx, inputs, spec)
    planes_strides = zip(spec.widths, spec.depths, spec.stage_strides())
    for index, (planes, depth, stride) in enumerate(planes_strides):
        if spec.layout == "keras_v2":
            # Stages of V2 downsample at their end; the last one does not.
            stride = 1 if index == len(spec.depths) - 1 else 2
        x = _stage(ctx, x, spec, index, planes, depth, stride)
    if spec.layout == "keras_v2":
        x = ctx.bn(name="post_bn", epsilon=1.001e-5)(x)
        x = ctx.layers.Activation("relu", name="post_relu")(x)
    return blocks.classifier_head(
        ctx, x, include_top=include_top, num_classes=num_classes,
        pooling=pooling, classifier_activation=classifier_activation,
        dropout_rate=dropout_rate)


# keras.applications' ImageNet files (file name stem, MD5 with and without
# the classifier) and the top-1 keras.io publishes for them.
_KERAS_FILES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626", 0.749),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21", 0.764),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c", 0.766),
    "resnet50_v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917", 0.760),
    "resnet101_v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5", 0.772),
    "resnet152_v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33", 0.780),
}


def _keras_record(name):
    top_md5, notop_md5, top1 = _KERAS_FILES[name]
    stem = f"{name.replace('_', '')}_weights_tf_dim_ordering_tf_kernels"
    files = tuple(records.WeightFile(f"{stem}{suffix}.h5",
                                     f"{records.KERAS_APPLICATIONS}resnet/{stem}{suffix}.h5",
                                     f"md5:{md5}", include_top=top)
                  for top, suffix, md5 in ((True, "", top_md5), (False, "_notop", notop_md5)))
    return records.WeightRecord(
        arch=name, tag="imagenet", source="keras.applications", files=files,
        preprocessing="tf" if name.endswith("_v2") else "caffe", num_classes=1000,
        input_shape=(224, 224, 3), first_conv="conv1_conv", classifier="predictions",
        dataset="ImageNet-1k", metrics={"top1": top1},
        licence="as keras.applications publishes them",
        card="https://keras.io/api/applications/")


# torchvision's ImageNet-1k checkpoints (V1 "tv_in1k", V2 "tv2_in1k", the
# tags timm gives the same files): file, published top-1, parameters.
_TV = "https://github.com/pytorch/vision/tree/main/references/classification"
_TV2 = "https://github.com/pytorch/vision/issues/3995"
_TORCHVISION_FILES = {
    "resnet18": [("tv_in1k", "resnet18-f37072fd.pth", 0.69758, _TV)],
    "resnet34": [("tv_in1k", "resnet34-b627a593.pth", 0.73314, _TV)],
    "tv_resnet50": [("tv_in1k", "resnet50-0676ba61.pth", 0.76130, _TV),
                    ("tv2_in1k", "resnet50-11ad3fa6.pth", 0.80858, _TV2)],
    "tv_resnet101": [("tv_in1k", "resnet101-63fe2227.pth", 0.77374, _TV),
                     ("tv2_in1k", "resnet101-cd907fc2.pth", 0.81886, _TV2)],
    "tv_resnet152": [("tv_in1k", "resnet152-394f9c45.pth", 0.78312, _TV),
                     ("tv2_in1k", "resnet152-f82ba261.pth", 0.82284, _TV2)],
    "resnext50_32x4d": [("tv_in1k", "resnext50_32x4d-7cdf4587.pth", 0.77618, _TV),
                        ("tv2_in1k", "resnext50_32x4d-1a0047aa.pth", 0.81198, _TV2)],
    "resnext101_32x8d": [("tv_in1k", "resnext101_32x8d-8ba56ff5.pth", 0.79312, _TV),
                         ("tv2_in1k", "resnext101_32x8d-110c445d.pth", 0.82834, _TV2)],
}
_NUM_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "tv_resnet50": 25_557_032,
               "tv_resnet101": 44_549_160, "tv_resnet152": 60_192_808,
               "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336}
# Checkpoints only timm publishes for the same layout (Wightman et al. 2021,
# "ResNet strikes back", procedure A1).
_TIMM_FILES = {"tv_resnet50": ["resnet50.a1_in1k"]}


def _torch_records(name):
    out = [records.torchvision(name, tag, file, top1=top1, num_params=_NUM_PARAMS[name],
                               first_conv="conv1", classifier="fc", recipe=recipe)
           for tag, file, top1, recipe in _TORCHVISION_FILES.get(name, ())]
    out += [records.timm(name, timm_name, first_conv="conv1", classifier="fc",
                         num_params=_NUM_PARAMS[name])
            for timm_name in _TIMM_FILES.get(name, ())]
    return out


_BLOCK = re.compile(r"^conv(\d+)_block(\d+)_(\d)_(conv|bn)$")


def torch_module(spec, layer: str) -> str | None:
    """torchvision's module name for a zoo layer of a torchvision-layout
    ResNet/ResNeXt ("conv2_block1_1_conv" -> "layer1.0.conv1")."""
    named = {"conv1_conv": "conv1", "conv1_bn": "bn1", "predictions": "fc"}
    if layer in named:
        return named[layer]
    match = _BLOCK.match(layer)
    if not match:
        return None
    stage, block, index, kind = match.groups()
    prefix = f"layer{int(stage) - 1}.{int(block) - 1}"
    if index == "0":
        return f"{prefix}.downsample.{0 if kind == 'conv' else 1}"
    return f"{prefix}.{kind}{index}"


def _reference(spec) -> str:
    if spec.cardinality > 1:
        paper = "Xie et al. 2017, arXiv:1611.05431"
    elif spec.layout == "keras_v2":
        paper = "He et al. 2016, arXiv:1603.05027"
    else:
        paper = "He et al. 2016, arXiv:1512.03385"
    layout = {"keras": "keras.applications layout",
              "keras_v2": "keras.applications layout",
              "torch": "torchvision layout"}[spec.layout]
    if spec.cifar:
        layout = "CIFAR form, " + ("option-A shortcuts" if spec.shortcut == "A"
                                   else "projection shortcuts")
    return f"{paper} ({layout})"


def _entry(name, spec, family):
    cifar = spec.cifar
    return dict(
        name=name, family=family, spec=spec, builder=build_resnet,
        stage_names=stage_names, default_size=32 if cifar else 224,
        min_size=8 if cifar else 32, default_classes=10 if cifar else 1000,
        reference=_reference(spec),
        preprocessing={"keras": "caffe", "keras_v2": "tf"}.get(
            spec.layout, "tf" if cifar else "torch"),
        drop_path=True,
        torch_module=torch_module if spec.layout == "torch" and not cifar else None,
        search=_search(name))


def _search(name):
    """The wide search space's knob that picks a sibling model: the depth of
    the CIFAR ResNets, the cardinality of ResNeXt-29."""
    depths = {int(n[6:]): n for n in ("resnet20", "resnet32", "resnet44", "resnet56")}
    cardinalities = {8: "resnext29_8x64d", 16: "resnext29_16x64d"}
    if name in depths.values():
        return {"depth": {"values": [20, 32], "models": depths}}
    if name in cardinalities.values():
        return {"cardinality": {"values": [8, 16], "models": cardinalities}}
    return {}


# The registry entries of this module's two families (zoo.registry collects them).
ENTRIES = ([_entry(n, s, "resnet") for n, s in RESNETS.items()]
           + [_entry(n, s, "resnext") for n, s in RESNEXTS.items()])

# Every pretrained weight of this module's models (zoo.registry collects them).
WEIGHTS = ([_keras_record(n) for n in _KERAS_FILES]
           + [r for n in {**RESNETS, **RESNEXTS} for r in _torch_records(n)])
