"""Layer factories and the blocks every family is made of.

Every function takes a `Context`, which carries the Keras module (Keras 3 or
tf_keras) and the construction-time choices (regularizer, initializer,
stochastic depth), so one definition serves both Keras worlds and a
regularizer is attached when the layer is created (assigning one after a
Keras 3 layer is built adds no loss).
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo.errors import InputError


@dataclass
class Context:
    """What a builder needs besides the architecture spec.

    Args:
        keras: the `keras` or `tf_keras` module the model is built with.
        regularizer: a regularizer of that module, or None; applied to conv,
            pointwise and dense kernels (not to depthwise kernels).
        kernel_initializer: identifier for convolution kernels.
        drop_path_rate: final stochastic-depth rate, reached linearly by the
            last residual block (`block_drop_path`).
        zero_init_last_bn: start each residual branch's last BN at gamma 0.
    """

    keras: object
    regularizer: object = None
    kernel_initializer: object = "he_normal"
    drop_path_rate: float = 0.0
    zero_init_last_bn: bool = False

    @property
    def layers(self):
        return self.keras.layers

    def _initializer(self):
        # A fresh object per layer: Keras warns when one seeded initializer
        # instance is shared, and strings are resolved by Keras itself.
        init = self.kernel_initializer
        if isinstance(init, (str, dict)) or init is None:
            return init
        return init.__class__.from_config(init.get_config())

    def _regularizer(self):
        reg = self.regularizer
        return None if reg is None else reg.__class__.from_config(reg.get_config())

    def conv(self, filters, kernel_size, *, strides=1, padding="valid",
             use_bias=False, groups=1, name):
        return self.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding,
            use_bias=use_bias, groups=groups, name=name,
            kernel_initializer=self._initializer(),
            kernel_regularizer=self._regularizer())

    def depthwise(self, kernel_size, *, strides=1, padding="valid",
                  depth_multiplier=1, use_bias=False, name):
        return self.layers.DepthwiseConv2D(
            kernel_size, strides=strides, padding=padding,
            depth_multiplier=depth_multiplier, use_bias=use_bias, name=name,
            depthwise_initializer=self._initializer())

    def separable(self, filters, kernel_size, *, padding="same",
                  use_bias=False, name):
        return self.layers.SeparableConv2D(
            filters, kernel_size, padding=padding, use_bias=use_bias,
            name=name, depthwise_initializer=self._initializer(),
            pointwise_initializer=self._initializer(),
            pointwise_regularizer=self._regularizer())

    def bn(self, *, name, epsilon=1e-3, momentum=0.99, zero_gamma=False):
        return self.layers.BatchNormalization(
            axis=-1, epsilon=epsilon, momentum=momentum, name=name,
            gamma_initializer="zeros" if zero_gamma else "ones")

    def dense(self, units, *, activation=None, name, dtype=None):
        kwargs = {} if dtype is None else {"dtype": dtype}
        return self.layers.Dense(
            units, activation=activation, name=name,
            kernel_regularizer=self._regularizer(), **kwargs)

    def block_drop_path(self, index, num_blocks) -> float:
        """Stochastic-depth rate of residual block `index` (from 0) of
        `num_blocks`: linear from 0 to drop_path_rate (timm's rule)."""
        if num_blocks <= 1:
            return self.drop_path_rate
        return self.drop_path_rate * index / (num_blocks - 1)

    def drop_path(self, x, rate, *, name):
        """Stochastic depth: drops the whole residual branch per sample.

        A Dropout whose noise is broadcast over height, width and channels
        drops entire samples of the branch and rescales the kept ones, which
        is stochastic depth without a custom layer.
        """
        if rate <= 0:
            return x
        return self.layers.Dropout(rate, noise_shape=(None, 1, 1, 1),
                                   name=name)(x)

    @property
    def head_dtype(self):
        """float32 for the classifier under a mixed-precision policy."""
        keras = self.keras
        if hasattr(keras, "config") and hasattr(keras.config, "dtype_policy"):
            policy = keras.config.dtype_policy().name
        else:
            policy = keras.mixed_precision.global_policy().name
        return "float32" if policy.startswith("mixed") else None


def conv_bn_act(ctx, x, filters, kernel_size, *, strides=1, name,
                activation="relu", use_bias=False, groups=1, epsilon=1e-5,
                momentum=0.9, zero_gamma=False):
    """Conv → BN → activation with torch-style explicit padding.

    Stride-1 convolutions use "same" padding; strided ones pad
    `kernel_size // 2` on every side first, as PyTorch does, so feature maps
    and ported weights line up with torchvision.
    """
    layers = ctx.layers
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = ctx.conv(filters, kernel_size, strides=strides, padding=padding,
                 use_bias=use_bias, groups=groups, name=f"{name}_conv")(x)
    x = ctx.bn(name=f"{name}_bn", epsilon=epsilon, momentum=momentum,
               zero_gamma=zero_gamma)(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_relu")(x)
    return x


def option_a(ctx, x, out_channels, stride, *, name):
    """Option A of He et al. 2016 (§4.2), parameter-free: every `stride`-th
    pixel, and the new channels as zeros (half before, half after), so the
    CIFAR ResNets keep their published parameter counts.

    Built from standard layers, so that a saved model loads where this
    package is not installed: a 1×1 max pooling with the stride (the
    subsampling x[:, ::s, ::s]) and one PAD of the channel axis — a
    ZeroPadding2D told its input is channels-first pads the last two axes,
    here width by (0, 0) and channels by the zeros. One PAD op keeps one
    quantization scale for the shortcut, which LiteRT's int8 kernels need.
    (Files saved before this used the equivalent custom layer
    `zoo.layers` ShortcutA, still registered to load them.)"""
    if stride > 1:
        x = ctx.layers.MaxPooling2D(1, strides=stride, name=f"{name}_subsample")(x)
    pad = out_channels - x.shape[-1]
    if pad:
        x = ctx.layers.ZeroPadding2D(((0, 0), (pad // 2, pad - pad // 2)),
                                     data_format="channels_first", name=name)(x)
    return x


def shortcut(ctx, x, out_channels, stride, *, kind, name, use_bias=False,
             epsilon=1e-5, momentum=0.9):
    """The residual shortcut. `kind`: "identity"; "conv" (always a 1×1
    projection: keras.applications' first block of a stage); or, deciding
    from the shapes, "projection" / "A": identity when they match, else a
    1×1 projection / option A (parameter-free, the CIFAR ResNets)."""
    same = stride == 1 and x.shape[-1] == out_channels
    if kind == "identity" or (same and kind != "conv"):
        return x
    if kind == "A":
        return option_a(ctx, x, out_channels, stride, name=f"{name}_0_shortcut")
    s = ctx.conv(out_channels, 1, strides=stride, use_bias=use_bias,
                 name=f"{name}_0_conv")(x)
    return ctx.bn(name=f"{name}_0_bn", epsilon=epsilon, momentum=momentum)(s)


def basic_block(ctx, x, filters, stride, *, shortcut_kind, name, drop_path=0.0,
                epsilon=1e-5, momentum=0.9):
    """Two 3×3 convolutions (ResNet-18/34 and the CIFAR ResNets); `drop_path`
    is this block's stochastic-depth rate."""
    sc = shortcut(ctx, x, filters, stride, kind=shortcut_kind, name=name,
                  epsilon=epsilon, momentum=momentum)
    y = conv_bn_act(ctx, x, filters, 3, strides=stride, name=f"{name}_1",
                    epsilon=epsilon, momentum=momentum)
    y = conv_bn_act(ctx, y, filters, 3, name=f"{name}_2", activation=None,
                    epsilon=epsilon, momentum=momentum,
                    zero_gamma=ctx.zero_init_last_bn)
    y = ctx.drop_path(y, drop_path, name=f"{name}_drop_path")
    y = ctx.layers.Add(name=f"{name}_add")([sc, y])
    return ctx.layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_block(ctx, x, filters, stride, *, width, groups=1,
                     stride_in_1x1=False, use_bias=False, shortcut_kind="projection",
                     name, drop_path=0.0, epsilon=1e-5, momentum=0.9):
    """1×1 → 3×3 (optionally grouped) → 1×1, the ResNet-50 and ResNeXt block.

    Args:
        filters: output channels of the block (4 × the stage's planes).
        width: channels of the 3×3 convolution (cardinality × group width
            for ResNeXt).
        stride_in_1x1: put the stride on the first 1×1 convolution
            (keras.applications / original Caffe ResNet) instead of the 3×3
            (torchvision "v1.5").
        shortcut_kind: see `shortcut`.
        drop_path: this block's stochastic-depth rate.
    """
    layers = ctx.layers
    sc = shortcut(ctx, x, filters, stride, kind=shortcut_kind, name=name,
                  use_bias=use_bias, epsilon=epsilon, momentum=momentum)
    s1, s2 = (stride, 1) if stride_in_1x1 else (1, stride)
    y = ctx.conv(width, 1, strides=s1, use_bias=use_bias,
                 name=f"{name}_1_conv")(x)
    y = ctx.bn(name=f"{name}_1_bn", epsilon=epsilon, momentum=momentum)(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    if s2 > 1:
        y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = ctx.conv(width, 3, strides=s2, padding="valid" if s2 > 1 else "same",
                 use_bias=use_bias, groups=groups, name=f"{name}_2_conv")(y)
    y = ctx.bn(name=f"{name}_2_bn", epsilon=epsilon, momentum=momentum)(y)
    y = layers.Activation("relu", name=f"{name}_2_relu")(y)
    y = ctx.conv(filters, 1, use_bias=use_bias, name=f"{name}_3_conv")(y)
    y = ctx.bn(name=f"{name}_3_bn", epsilon=epsilon, momentum=momentum,
               zero_gamma=ctx.zero_init_last_bn)(y)
    y = ctx.drop_path(y, drop_path, name=f"{name}_drop_path")
    y = layers.Add(name=f"{name}_add")([sc, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def preact_bottleneck_block(ctx, x, filters, stride, *, conv_shortcut, name,
                            drop_path=0.0):
    """Pre-activation bottleneck, exactly keras.applications' ResNetV2 block.

    Layer names, biases (on the shortcut and last convolutions only) and the
    stride on the 3×3 convolution follow keras.applications, so its weight
    files load.
    """
    layers = ctx.layers
    eps = 1.001e-5
    preact = ctx.bn(name=f"{name}_preact_bn", epsilon=eps)(x)
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if conv_shortcut:
        sc = ctx.conv(4 * filters, 1, strides=stride, use_bias=True,
                      name=f"{name}_0_conv")(preact)
    elif stride > 1:
        sc = layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        sc = x
    y = ctx.conv(filters, 1, name=f"{name}_1_conv")(preact)
    y = ctx.bn(name=f"{name}_1_bn", epsilon=eps)(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = ctx.conv(filters, 3, strides=stride, name=f"{name}_2_conv")(y)
    y = ctx.bn(name=f"{name}_2_bn", epsilon=eps)(y)
    y = layers.Activation("relu", name=f"{name}_2_relu")(y)
    y = ctx.conv(4 * filters, 1, use_bias=True, name=f"{name}_3_conv")(y)
    y = ctx.drop_path(y, drop_path, name=f"{name}_drop_path")
    return layers.Add(name=f"{name}_out")([sc, y])


def separable_block(ctx, x, filters, *, name, pre_activation=True,
                    activation_name=None):
    """ReLU → SeparableConv2D(3×3) → BN, Xception's unit (keras names)."""
    layers = ctx.layers
    if pre_activation:
        x = layers.Activation("relu", name=activation_name or f"{name}_act")(x)
    x = ctx.separable(filters, 3, padding="same", name=name)(x)
    return ctx.bn(name=f"{name}_bn")(x)


def classifier_head(ctx, x, *, include_top, num_classes, pooling,
                    classifier_activation, dropout_rate,
                    dropout_name="top_dropout"):
    """Global pooling, optional dropout and the dense classifier."""
    layers = ctx.layers
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate:
            x = layers.Dropout(dropout_rate, name=dropout_name)(x)
        return ctx.dense(num_classes, activation=classifier_activation,
                         name="predictions", dtype=ctx.head_dtype)(x)
    return global_pool(ctx, x, pooling)


def flatten_head(ctx, x, spec, model, dropout_first, **head):
    """torchvision's classifier of AlexNet and VGG: the feature map average-
    pooled to `spec.pooled_size` (an identity at the reference input size),
    flattened, the `spec.hidden` dense layers with ReLU and dropout (before
    each layer, AlexNet; after it, VGG), then the classifier. `head`: the
    builder's num_classes, classifier_activation and dropout_rate."""
    layers, pooled_size, hidden = ctx.layers, spec.pooled_size, spec.hidden
    num_classes, dropout_rate = head["num_classes"], head["dropout_rate"]
    if pooled_size and tuple(x.shape[1:3]) != (pooled_size,) * 2:
        if not hasattr(layers, "AdaptiveAveragePooling2D"):
            raise InputError(
                f"This Keras ({ctx.keras.__name__}) has no adaptive pooling; "
                f"build {model} with include_top=True at its reference size "
                f"({pooled_size}×{pooled_size} features) or with include_top=False.")
        x = layers.AdaptiveAveragePooling2D(pooled_size, name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden, start=1):
        dropout = layers.Dropout(dropout_rate, name=f"fc{i}_dropout")
        x = dropout(x) if dropout_first else x
        x = ctx.dense(units, activation="relu", name=f"fc{i}")(x)
        x = x if dropout_first else dropout(x)
    return ctx.dense(num_classes, activation=head["classifier_activation"],
                     name="predictions", dtype=ctx.head_dtype)(x)


def global_pool(ctx, x, pooling):
    """A headless model's output: "avg" or "max" global pooling, or the
    feature map (None)."""
    if pooling == "avg":
        return ctx.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return ctx.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x
