"""MobileNet V1 and V2 (alpha 1) with the layout of ``keras.applications``.

Layers, biases (none), BatchNorm epsilon, ReLU6 and padding follow Keras so that
the ImageNet ``*_no_top.h5`` files load layer for layer (``keras_layers``).
Depthwise convolutions are ``nnx.Conv`` with one group per channel: kernel
``(3, 3, 1, C)`` where Keras stores ``(3, 3, C, 1)``.

Blocks, named as in Keras:
- MobileNet: ``stem`` (``conv1``), ``conv_dw_1 ... conv_dw_13`` (depthwise +
  pointwise pair each): 14 blocks.
- MobileNetV2: ``stem`` (``Conv1`` + ``expanded_conv``), ``block_1 ... block_16``
  and ``Conv_1`` (the closing 1x1 conv to 1280 channels): 18 blocks.
"""

from flax import nnx
import jax

from mammojax.models import batchnorm
from mammojax.models import layers

_KERAS_BN_EPSILON = 1e-3
# (pointwise filters, stride) of Keras' conv_dw_1 ... conv_dw_13.
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
             (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# (output filters, stride) of Keras' block_1 ... block_16, all with expansion 6.
V2_BLOCKS = ((24, 2), (24, 1), (32, 2), (32, 1), (32, 1), (64, 2), (64, 1), (64, 1),
             (64, 1), (96, 1), (96, 1), (96, 1), (160, 2), (160, 1), (160, 1), (320, 1))
_V2_EXPANSION = 6
_V2_OUT_FEATURES = 1280


def _conv_bn(in_features: int, out_features: int, kernel_size: int, *, momentum: float,
             rngs: nnx.Rngs, strides: int = 1) -> layers.ConvBN:
  # Keras padding='same' with stride 2 pads the end more than the start, as 'SAME' does.
  return layers.ConvBN(in_features, out_features, kernel_size, rngs=rngs, strides=strides,
                       padding='SAME', use_bias=False, epsilon=_KERAS_BN_EPSILON,
                       momentum=momentum)


class _DepthwiseConvBN(nnx.Module):
  """3x3 depthwise conv (one filter per channel, no bias) followed by BatchNorm."""

  def __init__(self, features: int, *, strides: int, padding, momentum: float,
               rngs: nnx.Rngs):
    self.conv = nnx.Conv(features, features, (3, 3), strides=(strides, strides),
                         padding=padding, feature_group_count=features, use_bias=False,
                         conv_general_dilated=layers.conv_general_dilated, rngs=rngs)
    self.bn = batchnorm.BatchNorm(features, momentum=momentum, epsilon=_KERAS_BN_EPSILON,
                                  rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return self.bn(self.conv(x), use_running_average=not train)


class MobileNetStem(nnx.Module):
  """3x3/2 conv-BN-ReLU6 (Keras ``conv1``)."""

  def __init__(self, in_channels: int, *, momentum: float, rngs: nnx.Rngs):
    self.conv1 = _conv_bn(in_channels, 32, 3, strides=2, momentum=momentum, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return jax.nn.relu6(self.conv1(x, train=train))

  def keras_layers(self, name: str) -> list[tuple[str, nnx.Module]]:
    del name  # Keras calls the stem conv1 whatever the block is called
    return [('conv1', self.conv1.conv), ('conv1_bn', self.conv1.bn)]


class DepthwiseSeparable(nnx.Module):
  """3x3 depthwise conv-BN-ReLU6, then 1x1 conv-BN-ReLU6 (Keras ``conv_dw_i``)."""

  def __init__(self, in_features: int, out_features: int, *, strides: int,
               momentum: float, rngs: nnx.Rngs):
    # Keras pads strided blocks by one row and column at the end only (ZeroPadding2D
    # + 'valid'); 'SAME' would pad both sides on odd sizes.
    padding = 'SAME' if strides == 1 else ((0, 1), (0, 1))
    self.depthwise = _DepthwiseConvBN(in_features, strides=strides, padding=padding,
                                      momentum=momentum, rngs=rngs)
    self.pointwise = _conv_bn(in_features, out_features, 1, momentum=momentum, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = jax.nn.relu6(self.depthwise(x, train=train))
    return jax.nn.relu6(self.pointwise(x, train=train))

  def keras_layers(self, prefix: str) -> list[tuple[str, nnx.Module]]:
    pointwise = prefix.replace('conv_dw', 'conv_pw')
    return [(prefix, self.depthwise.conv), (f'{prefix}_bn', self.depthwise.bn),
            (pointwise, self.pointwise.conv), (f'{pointwise}_bn', self.pointwise.bn)]


class InvertedResidual(nnx.Module):
  """1x1 expand-BN-ReLU6 → 3x3 depthwise-BN-ReLU6 → 1x1 project-BN (linear).

  The input is added back when the shapes allow. ``expansion=1`` drops the
  expand conv, as Keras does for its first block (``expanded_conv``) only.
  """

  def __init__(self, in_features: int, out_features: int, *, strides: int, expansion: int,
               momentum: float, rngs: nnx.Rngs):
    hidden = in_features * expansion
    self.expand = (_conv_bn(in_features, hidden, 1, momentum=momentum, rngs=rngs)
                   if expansion != 1 else None)
    # Keras pads strided blocks with correct_pad + 'valid': (0, 1) on even sizes and
    # (1, 1) on odd ones, which is 'SAME' for a 3x3/2 window.
    self.depthwise = _DepthwiseConvBN(hidden, strides=strides, padding='SAME',
                                      momentum=momentum, rngs=rngs)
    self.project = _conv_bn(hidden, out_features, 1, momentum=momentum, rngs=rngs)
    self.residual = strides == 1 and in_features == out_features

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    y = x if self.expand is None else jax.nn.relu6(self.expand(x, train=train))
    y = jax.nn.relu6(self.depthwise(y, train=train))
    y = self.project(y, train=train)
    return x + y if self.residual else y

  def keras_layers(self, prefix: str) -> list[tuple[str, nnx.Module]]:
    units = ([] if self.expand is None else [('expand', self.expand)]) + [
        ('depthwise', self.depthwise), ('project', self.project)]
    return [pair for suffix, unit in units
            for pair in ((f'{prefix}_{suffix}', unit.conv), (f'{prefix}_{suffix}_BN', unit.bn))]


class MobileNetV2Stem(nnx.Module):
  """3x3/2 conv-BN-ReLU6 and the unexpanded first block (Keras ``Conv1``, ``expanded_conv``)."""

  def __init__(self, in_channels: int, *, momentum: float, rngs: nnx.Rngs):
    self.conv1 = _conv_bn(in_channels, 32, 3, strides=2, momentum=momentum, rngs=rngs)
    self.expanded_conv = InvertedResidual(32, 16, strides=1, expansion=1,
                                          momentum=momentum, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = jax.nn.relu6(self.conv1(x, train=train))
    return self.expanded_conv(x, train=train)

  def keras_layers(self, name: str) -> list[tuple[str, nnx.Module]]:
    del name  # Keras' own names: Conv1 and the first inverted residual
    return ([('Conv1', self.conv1.conv), ('bn_Conv1', self.conv1.bn)]
            + self.expanded_conv.keras_layers('expanded_conv'))


class PointwiseConv(nnx.Module):
  """1x1 conv-BN-ReLU6 to the output width (MobileNetV2's ``Conv_1``)."""

  def __init__(self, in_features: int, out_features: int, *, momentum: float,
               rngs: nnx.Rngs):
    self.conv = _conv_bn(in_features, out_features, 1, momentum=momentum, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return jax.nn.relu6(self.conv(x, train=train))

  def keras_layers(self, prefix: str) -> list[tuple[str, nnx.Module]]:
    return [(prefix, self.conv.conv), (f'{prefix}_bn', self.conv.bn)]


class MobileNet(layers.BlockBackbone):
  """MobileNet V1 (alpha 1, depth multiplier 1) feature extractor without its top."""

  def __init__(self, *, in_channels: int = 3, batchnorm_momentum: float = 0.9,
               rngs: nnx.Rngs):
    momentum = batchnorm_momentum
    blocks = [MobileNetStem(in_channels, momentum=momentum, rngs=rngs)]
    features = 32
    for filters, strides in V1_BLOCKS:
      blocks.append(DepthwiseSeparable(features, filters, strides=strides,
                                       momentum=momentum, rngs=rngs))
      features = filters
    self.blocks = nnx.List(blocks)
    self.block_names = ('stem',) + tuple(f'conv_dw_{i + 1}' for i in range(len(V1_BLOCKS)))
    self.out_features = features


class MobileNetV2(layers.BlockBackbone):
  """MobileNetV2 (alpha 1) feature extractor without its top (ReLU6 output)."""

  def __init__(self, *, in_channels: int = 3, batchnorm_momentum: float = 0.9,
               rngs: nnx.Rngs):
    momentum = batchnorm_momentum
    blocks = [MobileNetV2Stem(in_channels, momentum=momentum, rngs=rngs)]
    features = 16
    for filters, strides in V2_BLOCKS:
      blocks.append(InvertedResidual(features, filters, strides=strides,
                                     expansion=_V2_EXPANSION, momentum=momentum, rngs=rngs))
      features = filters
    blocks.append(PointwiseConv(features, _V2_OUT_FEATURES, momentum=momentum, rngs=rngs))
    self.blocks = nnx.List(blocks)
    self.block_names = (('stem',) + tuple(f'block_{i + 1}' for i in range(len(V2_BLOCKS)))
                        + ('Conv_1',))
    self.out_features = _V2_OUT_FEATURES
