"""VGG16/VGG19 with the layout of ``keras.applications.VGG16``/``VGG19``.

Each stage is 3x3 'same' convolutions with bias and ReLU followed by 2x2/2 max
pooling; there is no BatchNorm. Layer names follow Keras (``block1_conv1``) so
the ImageNet ``*_notop.h5`` files load layer for layer (``keras_layers``).

Blocks: ``block1 ... block5`` (each its convolutions and its pool; no stem).
Inputs must be at least 32x32 (Keras' minimum).
"""

from collections.abc import Sequence

from flax import nnx
import jax

from mammojax.models import layers

MIN_INPUT_SIZE = 32
STAGE_WIDTHS = (64, 128, 256, 512, 512)
STAGE_DEPTHS = {
    'vgg16': (2, 2, 3, 3, 3),
    'vgg19': (2, 2, 4, 4, 4),
}


class ConvBlock(nnx.Module):
  """``depth`` 3x3 conv-ReLU layers, then 2x2/2 max pooling (Keras ``blockN``)."""

  def __init__(self, in_features: int, out_features: int, depth: int, *, rngs: nnx.Rngs):
    self.convs = nnx.List([
        nnx.Conv(in_features if index == 0 else out_features, out_features, (3, 3),
                 padding='SAME', use_bias=True, rngs=rngs)
        for index in range(depth)])

  def keras_layers(self, name: str) -> list[tuple[str, nnx.Module]]:
    return [(f'{name}_conv{index + 1}', conv) for index, conv in enumerate(self.convs)]

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    del train  # nothing behaves differently in training
    for conv in self.convs:
      x = nnx.relu(conv(x))
    return layers.max_pool(x, 2, 2)


class VGG(layers.BlockBackbone):
  """VGG feature extractor without its top; ``stage_depths`` picks VGG16 or VGG19."""

  def __init__(self, *, stage_depths: Sequence[int] = STAGE_DEPTHS['vgg16'],
               in_channels: int = 3, batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    del batchnorm_momentum  # no BatchNorm; accepted so every backbone builds alike
    if len(stage_depths) != len(STAGE_WIDTHS):
      raise ValueError(f'VGG has {len(STAGE_WIDTHS)} stages; got stage_depths='
                       f'{tuple(stage_depths)}. Use e.g. STAGE_DEPTHS["vgg16"].')
    blocks, in_features = [], in_channels
    for width, depth in zip(STAGE_WIDTHS, stage_depths):
      blocks.append(ConvBlock(in_features, width, depth, rngs=rngs))
      in_features = width
    self.blocks = nnx.List(blocks)
    self.block_names = tuple(f'block{i + 1}' for i in range(len(blocks)))
    self.out_features = in_features

  def __call__(self, x: jax.Array, *, train: bool, frozen_blocks: int = 0) -> jax.Array:
    """Runs the blocks (``frozen_blocks`` changes nothing here: there is no BatchNorm)."""
    if min(x.shape[1:3]) < MIN_INPUT_SIZE:  # five 2x2 pools would leave nothing
      raise ValueError(f'VGG needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} '
                       f'pixels; got {x.shape[1]}x{x.shape[2]}. Use larger images or patches.')
    return super().__call__(x, train=train, frozen_blocks=frozen_blocks)


class VGG16(VGG):
  """``keras.applications.VGG16`` without its top: 13 convolutions in 5 blocks."""

  def __init__(self, *, in_channels: int = 3, batchnorm_momentum: float = 0.9,
               rngs: nnx.Rngs):
    super().__init__(stage_depths=STAGE_DEPTHS['vgg16'], in_channels=in_channels,
                     batchnorm_momentum=batchnorm_momentum, rngs=rngs)


class VGG19(VGG):
  """``keras.applications.VGG19`` without its top: 16 convolutions in 5 blocks."""

  def __init__(self, *, in_channels: int = 3, batchnorm_momentum: float = 0.9,
               rngs: nnx.Rngs):
    super().__init__(stage_depths=STAGE_DEPTHS['vgg19'], in_channels=in_channels,
                     batchnorm_momentum=batchnorm_momentum, rngs=rngs)
