"""Small building blocks shared by the backbones."""

from flax import nnx
import jax
import jax.numpy as jnp


class ConvBN(nnx.Module):
  """Convolution followed by BatchNorm.

  ``momentum`` is the running-statistics decay: Keras uses 0.99, which needs
  hundreds of steps to settle; small medical sets train for fewer, so the
  configs default to 0.9 (``config.model.batchnorm_momentum``).
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: int, *,
               rngs: nnx.Rngs, strides: int = 1, padding='SAME',
               use_bias: bool = False, epsilon: float = 1e-3, momentum: float = 0.9,
               use_scale: bool = True):
    self.conv = nnx.Conv(in_features, out_features, (kernel_size, kernel_size),
                         strides=(strides, strides), padding=padding,
                         use_bias=use_bias, rngs=rngs)
    self.bn = nnx.BatchNorm(out_features, momentum=momentum, epsilon=epsilon,
                            use_scale=use_scale, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return self.bn(self.conv(x), use_running_average=not train)


def max_pool(x: jax.Array, window: int, stride: int, pad: int = 0) -> jax.Array:
  """Max pooling with explicit zero padding, as Keras' ZeroPadding2D + MaxPool2D.

  Zero padding equals -inf padding here because inputs follow a ReLU.
  """
  if pad:
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  return nnx.max_pool(x, (window, window), strides=(stride, stride),
                      padding='VALID')


class BlockBackbone(nnx.Module):
  """A feature extractor made of ``self.blocks``, named by ``self.block_names``.

  Subclasses build the blocks; running them and listing their Keras layers is
  the same for every network. Each block provides ``keras_layers(name)``.
  """

  def __call__(self, x: jax.Array, *, train: bool, frozen_blocks: int = 0) -> jax.Array:
    """Runs the blocks; the first ``frozen_blocks`` use BatchNorm running stats."""
    for index, block in enumerate(self.blocks):
      x = block(x, train=train and index >= frozen_blocks)
    return x

  def keras_layers(self) -> list[tuple[str, nnx.Module]]:
    """(Keras layer name, module) for every weighted layer, in Keras' order."""
    return [pair for name, block in zip(self.block_names, self.blocks)
            for pair in block.keras_layers(name)]
