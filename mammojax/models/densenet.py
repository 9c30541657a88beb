"""DenseNet (121/169/201) with the layout of ``keras.applications.DenseNet121``.

The layer structure, biases (none), BatchNorm epsilon and padding follow Keras so
that the ImageNet ``*_notop.h5`` files load layer for layer (``keras_layers``).
Blocks are named as in Keras: ``stem``, every dense layer ``conv2_block1 ...
conv5_block16`` and the transitions ``pool2, pool3, pool4`` between the stages.
Keras' closing ``bn`` + ReLU belongs to the last dense layer, so DenseNet121 has
1 + 58 + 3 = 62 blocks and "unfreeze the last N" counts only layers that convolve.
"""

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp

from mammojax.models import batchnorm
from mammojax.models import layers

_KERAS_BN_EPSILON = 1.001e-5
_GROWTH_RATE = 32  # channels each dense layer adds
_BOTTLENECK_WIDTH = 4 * _GROWTH_RATE
_STEM_FEATURES = 64
STAGE_DEPTHS = {
    'densenet121': (6, 12, 24, 16),
    'densenet169': (6, 12, 32, 32),
    'densenet201': (6, 12, 48, 32),
}


def _batch_norm(features: int, *, momentum: float, rngs: nnx.Rngs) -> batchnorm.BatchNorm:
  return batchnorm.BatchNorm(features, momentum=momentum, epsilon=_KERAS_BN_EPSILON, rngs=rngs)


def _conv(in_features: int, out_features: int, kernel_size: int, *,
          rngs: nnx.Rngs) -> nnx.Conv:
  # Stride 1 everywhere after the stem, so 'SAME' is Keras' padding='same'.
  return nnx.Conv(in_features, out_features, (kernel_size, kernel_size), padding='SAME',
                  use_bias=False, conv_general_dilated=layers.conv_general_dilated, rngs=rngs)


class Stem(nnx.Module):
  """7x7/2 conv, BN, ReLU, 3x3/2 max pool (Keras ``conv1`` + ``pool1``)."""

  def __init__(self, in_channels: int, *, momentum: float, rngs: nnx.Rngs):
    self.conv1 = layers.ConvBN(in_channels, _STEM_FEATURES, 7, rngs=rngs, strides=2,
                               padding=((3, 3), (3, 3)), use_bias=False,
                               epsilon=_KERAS_BN_EPSILON, momentum=momentum)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nnx.relu(self.conv1(x, train=train))
    return layers.max_pool(x, 3, 2, pad=1)

  def keras_layers(self, name: str) -> list[tuple[str, nnx.Module]]:
    del name  # Keras calls the stem conv1 whatever the block is called
    return [('conv1_conv', self.conv1.conv), ('conv1_bn', self.conv1.bn)]


class DenseLayer(nnx.Module):
  """BN-ReLU-1x1 conv → BN-ReLU-3x3 conv, whose 32 channels join the input.

  Keras' ``conv_block``; ``final_norm`` adds the network's closing BN + ReLU
  (Keras ``bn``, ``relu``) to the last dense layer.
  """

  def __init__(self, in_features: int, *, momentum: float, rngs: nnx.Rngs,
               final_norm: bool = False):
    self.bn0 = _batch_norm(in_features, momentum=momentum, rngs=rngs)
    self.conv1 = _conv(in_features, _BOTTLENECK_WIDTH, 1, rngs=rngs)
    self.bn1 = _batch_norm(_BOTTLENECK_WIDTH, momentum=momentum, rngs=rngs)
    self.conv2 = _conv(_BOTTLENECK_WIDTH, _GROWTH_RATE, 3, rngs=rngs)
    self.bn = (_batch_norm(in_features + _GROWTH_RATE, momentum=momentum, rngs=rngs)
               if final_norm else None)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    y = self.conv1(nnx.relu(self.bn0(x, use_running_average=not train)))
    y = self.conv2(nnx.relu(self.bn1(y, use_running_average=not train)))
    x = jnp.concatenate([x, y], axis=-1)
    if self.bn is not None:
      x = nnx.relu(self.bn(x, use_running_average=not train))
    return x

  def keras_layers(self, prefix: str) -> list[tuple[str, nnx.Module]]:
    pairs = [(f'{prefix}_0_bn', self.bn0), (f'{prefix}_1_conv', self.conv1),
             (f'{prefix}_1_bn', self.bn1), (f'{prefix}_2_conv', self.conv2)]
    return pairs + ([('bn', self.bn)] if self.bn is not None else [])


class Transition(nnx.Module):
  """BN-ReLU-1x1 conv halving the channels, then 2x2/2 average pooling."""

  def __init__(self, in_features: int, *, momentum: float, rngs: nnx.Rngs):
    self.bn = _batch_norm(in_features, momentum=momentum, rngs=rngs)
    self.conv = _conv(in_features, in_features // 2, 1, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = self.conv(nnx.relu(self.bn(x, use_running_average=not train)))
    return nnx.avg_pool(x, (2, 2), strides=(2, 2), padding='VALID')

  def keras_layers(self, prefix: str) -> list[tuple[str, nnx.Module]]:
    return [(f'{prefix}_bn', self.bn), (f'{prefix}_conv', self.conv)]


class DenseNet(layers.BlockBackbone):
  """DenseNet feature extractor without its top (ImageNet layout, ReLU output)."""

  def __init__(self, *, stage_depths: Sequence[int] = STAGE_DEPTHS['densenet121'],
               in_channels: int = 3, batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    momentum = batchnorm_momentum
    blocks = [Stem(in_channels, momentum=momentum, rngs=rngs)]
    names = ['stem']
    features = _STEM_FEATURES
    for stage, depth in enumerate(stage_depths):
      if stage > 0:
        blocks.append(Transition(features, momentum=momentum, rngs=rngs))
        names.append(f'pool{stage + 1}')
        features //= 2
      for index in range(depth):
        last = stage == len(stage_depths) - 1 and index == depth - 1
        blocks.append(DenseLayer(features, momentum=momentum, rngs=rngs, final_norm=last))
        names.append(f'conv{stage + 2}_block{index + 1}')
        features += _GROWTH_RATE
    self.blocks = nnx.List(blocks)
    self.block_names = tuple(names)
    self.out_features = features

