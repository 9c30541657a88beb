"""Inception v3 with the layout of ``keras.applications.InceptionV3``.

Every layer, padding ('valid' vs 'same'), stride and pooling type follows Keras
so that ``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` loads
layer for layer (``keras_layers``): convolutions have no bias and are followed
by BatchNorm without scale (epsilon 1e-3) and ReLU. Keras' 3x3 'same' average
pooling does not count the padded zeros; ``AvgPool`` reproduces that.

Blocks: ``stem`` (everything before ``mixed0``), then ``mixed0 ... mixed10``:
12 blocks. Inputs must be at least 75x75 (Keras' minimum).
"""

from collections.abc import Sequence
import functools

from flax import nnx
import jax
import jax.numpy as jnp

from mammojax.models import batchnorm
from mammojax.models import layers

_KERAS_BN_EPSILON = 1e-3
MIN_INPUT_SIZE = 75
NUM_MIXED_BLOCKS = 11


class Conv2dBN(nnx.Module):
  """Conv (no bias), BatchNorm (no scale), ReLU: Keras' ``conv2d_bn``."""

  def __init__(self, in_features: int, out_features: int, kernel_size: int | Sequence[int],
               *, strides: int = 1, padding: str = 'SAME', momentum: float,
               rngs: nnx.Rngs):
    if isinstance(kernel_size, int):
      kernel_size = (kernel_size, kernel_size)
    # Every 'same' conv here has stride 1 and an odd kernel: symmetric padding, as Keras.
    self.conv = nnx.Conv(in_features, out_features, tuple(kernel_size),
                         strides=(strides, strides), padding=padding, use_bias=False,
                         conv_general_dilated=layers.conv_general_dilated, rngs=rngs)
    self.bn = batchnorm.BatchNorm(out_features, use_scale=False, epsilon=_KERAS_BN_EPSILON,
                                  momentum=momentum, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return nnx.relu(self.bn(self.conv(x), use_running_average=not train))


class AvgPool(nnx.Module):
  """3x3/1 'same' average pooling that, like Keras, ignores the padded zeros."""

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    del train
    pooled = nnx.avg_pool(x, (3, 3), strides=(1, 1), padding='SAME',
                          count_include_pad=False)
    return pooled.astype(x.dtype)


class MaxPool(nnx.Module):
  """3x3/2 'valid' max pooling."""

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    del train
    return layers.max_pool(x, 3, 2)


class Chain(nnx.Module):
  """Steps applied one after the other (the stem, or one branch of a block)."""

  def __init__(self, steps: Sequence[nnx.Module]):
    self.steps = nnx.List(steps)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for step in self.steps:
      x = step(x, train=train)
    return x


class Concat(nnx.Module):
  """Branches applied to one input, concatenated on channels (Keras ``concatenate``)."""

  def __init__(self, branches: Sequence[Sequence[nnx.Module]]):
    self.branches = nnx.List([Chain(steps) for steps in branches])

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return jnp.concatenate([branch(x, train=train) for branch in self.branches], axis=-1)


# The block builders mirror keras' inception_v3.py branch for branch, in the order
# Keras creates (and so names) the layers. Each returns (block, out_features).

def _stem(c, conv):
  stem = Chain([conv(c, 32, 3, strides=2, padding='VALID'), conv(32, 32, 3, padding='VALID'),
                conv(32, 64, 3), MaxPool(),
                conv(64, 80, 1, padding='VALID'), conv(80, 192, 3, padding='VALID'),
                MaxPool()])
  return stem, 192


def _mixed_35x35(c, pool_features, conv):  # mixed0, mixed1, mixed2
  block = Concat([
      [conv(c, 64, 1)],
      [conv(c, 48, 1), conv(48, 64, 5)],
      [conv(c, 64, 1), conv(64, 96, 3), conv(96, 96, 3)],
      [AvgPool(), conv(c, pool_features, 1)],
  ])
  return block, 64 + 64 + 96 + pool_features


def _reduce_35x35(c, conv):  # mixed3
  block = Concat([
      [conv(c, 384, 3, strides=2, padding='VALID')],
      [conv(c, 64, 1), conv(64, 96, 3), conv(96, 96, 3, strides=2, padding='VALID')],
      [MaxPool()],
  ])
  return block, 384 + 96 + c


def _mixed_17x17(c, width, conv):  # mixed4 ... mixed7 (width 128, 160, 160, 192)
  block = Concat([
      [conv(c, 192, 1)],
      [conv(c, width, 1), conv(width, width, (1, 7)), conv(width, 192, (7, 1))],
      [conv(c, width, 1), conv(width, width, (7, 1)), conv(width, width, (1, 7)),
       conv(width, width, (7, 1)), conv(width, 192, (1, 7))],
      [AvgPool(), conv(c, 192, 1)],
  ])
  return block, 4 * 192


def _reduce_17x17(c, conv):  # mixed8
  block = Concat([
      [conv(c, 192, 1), conv(192, 320, 3, strides=2, padding='VALID')],
      [conv(c, 192, 1), conv(192, 192, (1, 7)), conv(192, 192, (7, 1)),
       conv(192, 192, 3, strides=2, padding='VALID')],
      [MaxPool()],
  ])
  return block, 320 + 192 + c


def _mixed_8x8(c, conv):  # mixed9, mixed10
  block = Concat([
      [conv(c, 320, 1)],
      [conv(c, 384, 1), Concat([[conv(384, 384, (1, 3))], [conv(384, 384, (3, 1))]])],
      [conv(c, 448, 1), conv(448, 384, 3),
       Concat([[conv(384, 384, (1, 3))], [conv(384, 384, (3, 1))]])],
      [AvgPool(), conv(c, 192, 1)],
  ])
  return block, 320 + 768 + 768 + 192


def _keras_depths(steps: Sequence[nnx.Module], consumer_depth: int, path: tuple[int, ...]):
  """(Conv2dBN, depth of its Conv2D, branch path) in creation order; depth of the input.

  A Keras Functional model lists its layers by decreasing depth (the longest
  path to the output, counting Conv2D, BatchNormalization and Activation as
  three steps and each pooling or concatenate as one); ties go to the earlier
  input of a concatenate (its depth-first traversal), i.e. the smaller branch path.
  """
  depth, chunks = consumer_depth, []
  for step in reversed(steps):
    if isinstance(step, Concat):
      inner = [_keras_depths(branch.steps, depth + 1, path + (index,))
               for index, branch in enumerate(step.branches)]
      chunks.append([entry for entries, _ in inner for entry in entries])
      depth = max(first for _, first in inner)
    elif isinstance(step, Conv2dBN):
      depth += 3
      chunks.append([(step, depth, path)])
    else:
      depth += 1
      chunks.append([])
  return [entry for chunk in reversed(chunks) for entry in chunk], depth


def _keras_name(base: str, index: int) -> str:
  return base if index == 0 else f'{base}_{index}'


class InceptionV3(layers.BlockBackbone):
  """Inception v3 feature extractor without its top (ImageNet layout)."""

  def __init__(self, *, in_channels: int = 3, batchnorm_momentum: float = 0.9,
               rngs: nnx.Rngs):
    conv = functools.partial(Conv2dBN, momentum=batchnorm_momentum, rngs=rngs)
    stem, c = _stem(in_channels, conv)
    blocks = [stem]
    builders = ([functools.partial(_mixed_35x35, pool_features=f) for f in (32, 64, 64)]
                + [_reduce_35x35]
                + [functools.partial(_mixed_17x17, width=w) for w in (128, 160, 160, 192)]
                + [_reduce_17x17, _mixed_8x8, _mixed_8x8])
    for build in builders:
      block, c = build(c, conv=conv)
      blocks.append(block)
    self.blocks = nnx.List(blocks)
    self.block_names = ('stem',) + tuple(f'mixed{i}' for i in range(NUM_MIXED_BLOCKS))
    self.out_features = c

  def __call__(self, x: jax.Array, *, train: bool, frozen_blocks: int = 0) -> jax.Array:
    """Runs the blocks; the first ``frozen_blocks`` use BatchNorm running stats."""
    if min(x.shape[1:3]) < MIN_INPUT_SIZE:  # smaller inputs shrink to nothing in mixed8
      raise ValueError(f'InceptionV3 needs inputs of at least {MIN_INPUT_SIZE}x'
                       f'{MIN_INPUT_SIZE} pixels; got {x.shape[1]}x{x.shape[2]}. Use larger '
                       'images or patches.')
    return super().__call__(x, train=train, frozen_blocks=frozen_blocks)

  def keras_layers(self) -> list[tuple[str, nnx.Module]]:
    """(Keras layer name, module) for each weighted layer, in Keras' ``model.layers`` order.

    Keras names the layers ``conv2d[_k]``/``batch_normalization[_k]`` by creation
    order (a fresh session) but lists each mixed block's layers by depth, so the
    two orders differ inside a block. Blocks never interleave: every path out of
    a block goes through its concatenate.
    """
    result, created = [], 0
    for block in self.blocks:
      steps = block.steps if isinstance(block, Chain) else [block]
      entries, _ = _keras_depths(steps, 0, ())
      ops = []
      for index, (unit, depth, path) in enumerate(entries, start=created):
        ops.append((-depth, path, _keras_name('conv2d', index), unit.conv))
        ops.append((-(depth - 1), path, _keras_name('batch_normalization', index), unit.bn))
      created += len(entries)
      ops.sort(key=lambda op: op[:2])
      result.extend((name, module) for _, _, name, module in ops)
    return result
