"""A small VGG-style CNN (LeNet/AlexNet spirit) for quick runs on a laptop CPU."""

from collections.abc import Sequence

from flax import nnx
import jax

from mammojax.models import layers


class ConvBlock(nnx.Module):
  """Two 3x3 conv-BN-ReLU layers followed by 2x2 max pooling."""

  def __init__(self, in_features: int, out_features: int, *, momentum: float,
               rngs: nnx.Rngs):
    self.conv1 = layers.ConvBN(in_features, out_features, 3, momentum=momentum, rngs=rngs)
    self.conv2 = layers.ConvBN(out_features, out_features, 3, momentum=momentum, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nnx.relu(self.conv1(x, train=train))
    x = nnx.relu(self.conv2(x, train=train))
    return layers.max_pool(x, 2, 2)


class Stem(nnx.Module):
  """One 3x3 conv-BN-ReLU at full resolution."""

  def __init__(self, in_features: int, out_features: int, *, momentum: float,
               rngs: nnx.Rngs):
    self.conv = layers.ConvBN(in_features, out_features, 3, momentum=momentum, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return nnx.relu(self.conv(x, train=train))


class SmallCNN(layers.BlockBackbone):
  """Stem + ``len(widths)`` conv blocks; blocks are named ``stem, block1, ...``."""

  def __init__(self, *, in_channels: int = 1, widths: Sequence[int] = (16, 32, 64, 128),
               batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    stem_width = widths[0]
    blocks = [Stem(in_channels, stem_width, momentum=batchnorm_momentum, rngs=rngs)]
    previous = stem_width
    for width in widths:
      blocks.append(ConvBlock(previous, width, momentum=batchnorm_momentum, rngs=rngs))
      previous = width
    self.blocks = nnx.List(blocks)
    self.block_names = ('stem',) + tuple(f'block{i + 1}' for i in range(len(widths)))
    self.out_features = previous
