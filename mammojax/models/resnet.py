"""ResNet v1 (50/101/152) with the layout of ``keras.applications.ResNet50``.

The layer structure, biases, BatchNorm epsilon and padding follow Keras so that
the ImageNet ``*_notop.h5`` files researchers already have can be loaded layer
for layer. Blocks are named as in Keras: ``stem, conv2_block1 ... conv5_block3``.
"""

from collections.abc import Sequence
import functools

from flax import nnx
import jax

from mammojax.models import layers

_KERAS_BN_EPSILON = 1.001e-5
STAGE_DEPTHS = {
    'resnet50': (3, 4, 6, 3),
    'resnet101': (3, 4, 23, 3),
    'resnet152': (3, 8, 36, 3),
}


def _conv_bn(in_features, out_features, kernel_size, *, rngs, momentum, strides=1,
             padding='SAME'):
  return layers.ConvBN(in_features, out_features, kernel_size, rngs=rngs,
                       strides=strides, padding=padding, use_bias=True,
                       epsilon=_KERAS_BN_EPSILON, momentum=momentum)


class Stem(nnx.Module):
  """7x7/2 conv, BN, ReLU, 3x3/2 max pool (Keras ``conv1`` + ``pool1``)."""

  def __init__(self, in_channels: int, *, momentum: float, rngs: nnx.Rngs):
    self.conv1 = _conv_bn(in_channels, 64, 7, rngs=rngs, momentum=momentum, strides=2,
                          padding=((3, 3), (3, 3)))

  def keras_layers(self, name: str) -> list[tuple[str, nnx.Module]]:
    del name  # Keras calls the stem conv1 whatever the block is called
    return [('conv1_conv', self.conv1.conv), ('conv1_bn', self.conv1.bn)]

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nnx.relu(self.conv1(x, train=train))
    return layers.max_pool(x, 3, 2, pad=1)


class Bottleneck(nnx.Module):
  """1x1 → 3x3 → 1x1 residual block; the stride sits on the first 1x1 (Keras)."""

  def __init__(self, in_features: int, filters: int, *, strides: int,
               project: bool, momentum: float, rngs: nnx.Rngs):
    out_features = 4 * filters
    conv_bn = functools.partial(_conv_bn, rngs=rngs, momentum=momentum)
    self.shortcut = (conv_bn(in_features, out_features, 1, strides=strides)
                     if project else None)
    self.conv1 = conv_bn(in_features, filters, 1, strides=strides)
    self.conv2 = conv_bn(filters, filters, 3)
    self.conv3 = conv_bn(filters, out_features, 1)

  def keras_layers(self, prefix: str) -> list[tuple[str, nnx.Module]]:
    """Keras' order inside a block: 1, 2, then the shortcut conv, 3, their BNs."""
    convs = [('1', self.conv1), ('2', self.conv2)]
    layers_ = [item for index, unit in convs
               for item in ((f'{prefix}_{index}_conv', unit.conv),
                            (f'{prefix}_{index}_bn', unit.bn))]
    if self.shortcut is None:
      return layers_ + [(f'{prefix}_3_conv', self.conv3.conv), (f'{prefix}_3_bn', self.conv3.bn)]
    return layers_ + [(f'{prefix}_0_conv', self.shortcut.conv),
                      (f'{prefix}_3_conv', self.conv3.conv),
                      (f'{prefix}_0_bn', self.shortcut.bn), (f'{prefix}_3_bn', self.conv3.bn)]

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    shortcut = x if self.shortcut is None else self.shortcut(x, train=train)
    y = nnx.relu(self.conv1(x, train=train))
    y = nnx.relu(self.conv2(y, train=train))
    y = self.conv3(y, train=train)
    return nnx.relu(y + shortcut)


class ResNet(layers.BlockBackbone):
  """ResNet v1 feature extractor without its top (ImageNet layout)."""

  def __init__(self, *, stage_depths: Sequence[int] = STAGE_DEPTHS['resnet50'],
               in_channels: int = 3, batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    blocks = [Stem(in_channels, momentum=batchnorm_momentum, rngs=rngs)]
    names = ['stem']
    in_features = 64
    for stage, depth in enumerate(stage_depths):
      filters = 64 * 2**stage
      for index in range(depth):
        strides = 2 if (index == 0 and stage > 0) else 1
        blocks.append(Bottleneck(in_features, filters, strides=strides,
                                 project=index == 0, momentum=batchnorm_momentum,
                                 rngs=rngs))
        names.append(f'conv{stage + 2}_block{index + 1}')
        in_features = 4 * filters
    self.blocks = nnx.List(blocks)
    self.block_names = tuple(names)
    self.out_features = in_features

