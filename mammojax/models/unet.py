"""U-Net (Ronneberger 2015), Attention U-Net (Oktay 2018) and the U-Net autoencoder.

``padding='SAME'`` keeps every map's size (input sides must divide by
2**depth). ``padding='VALID'`` is the original paper: every 3x3 convolution
loses a one-pixel border, skips are centre-cropped to the decoder's size and
the output is smaller than the input (572 → 388 for depth 4). As the paper
requires, every 2x2 max-pool must see an even size, so that each output pixel
sits exactly over the centre of its input context and tiles join seamlessly;
``valid_input_sizes`` lists the sides that satisfy it.

The encoder keeps its levels in ``self.blocks`` (``enc1 … bottleneck``), like
every backbone, so the classifier in ``unet_encoder`` can reuse and freeze them.
"""

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp

from mammojax.models import attention as attention_lib
from mammojax.models import batchnorm
from mammojax.models import layers

PADDINGS = ('SAME', 'VALID')
NORMS = ('batch', 'none')


def center_crop(x: jax.Array, size: int | Sequence[int]) -> jax.Array:
  """The central ``size`` (side or (height, width)) of an NHWC map.

  With an odd size difference the extra row/column is dropped at the
  bottom/right.
  """
  height, width = (size, size) if isinstance(size, int) else tuple(size)
  top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
  if top < 0 or left < 0:
    raise ValueError(f'Cannot centre-crop a map of height/width {x.shape[1:3]} to '
                     f'{(height, width)}: the crop is larger than the map.')
  return x[:, top:top + height, left:left + width, :]


def _trace_unpadded(size: int, depth: int) -> int | None:
  """The unpadded U-Net's output side for input side ``size``; None when invalid."""
  for _ in range(depth):
    size -= 4  # two 3x3 VALID convolutions
    if size <= 0 or size % 2:
      return None
    size //= 2
  size -= 4  # bottleneck convolutions
  for _ in range(depth):
    if size <= 0:
      return None
    size = 2 * size - 4  # 2x2 up-convolution, then two 3x3 convolutions
  return size if size > 0 else None


def valid_input_sizes(depth: int, low: int, high: int) -> list[int]:
  """Input sides in [low, high] the unpadded U-Net of ``depth`` down-steps accepts."""
  return [size for size in range(low, high + 1) if _trace_unpadded(size, depth)]


def _nearest_sizes(size: int, is_valid) -> str:
  below = next((s for s in range(size - 1, 0, -1) if is_valid(s)), None)
  # Valid sides repeat with a period of 2**depth ≤ a few hundred, so this ends quickly.
  above = next(s for s in range(size + 1, 10 * size + 10_000) if is_valid(s))
  return f'{below} or {above}' if below else str(above)


def output_size(input_size: int, depth: int, padding: str = 'VALID') -> int:
  """The output side of a U-Net for ``input_size``; ValueError naming valid sides."""
  if padding == 'SAME':
    if input_size > 0 and input_size % 2**depth == 0:
      return input_size
    nearest = _nearest_sizes(input_size, lambda s: s % 2**depth == 0)
    raise ValueError(f'The padded U-Net (depth {depth}) needs input sides divisible by '
                     f'{2**depth}; got {input_size}. Resize or crop to {nearest}.')
  size = _trace_unpadded(input_size, depth)
  if size is None:
    nearest = _nearest_sizes(input_size, lambda s: _trace_unpadded(s, depth) is not None)
    raise ValueError(f'The unpadded U-Net (depth {depth}) cannot take input side {input_size}:'
                     ' every 2x2 max-pool must see an even size and every map must keep at '
                     f'least one pixel. Nearest valid sides: {nearest} '
                     '(see unet.valid_input_sizes).')
  return size


class ConvNormReLU(nnx.Module):
  """3x3 convolution, optional BatchNorm, ReLU."""

  def __init__(self, in_features: int, out_features: int, *, padding: str, norm: str,
               momentum: float, rngs: nnx.Rngs):
    # Without a norm layer the convolution needs its own bias.
    self.conv = nnx.Conv(in_features, out_features, (3, 3), padding=padding,
                         use_bias=norm == 'none', rngs=rngs)
    self.bn = (batchnorm.BatchNorm(out_features, momentum=momentum, rngs=rngs)
               if norm == 'batch' else None)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = self.conv(x)
    if self.bn is not None:
      x = self.bn(x, use_running_average=not train)
    return nnx.relu(x)


class DoubleConv(nnx.Module):
  """The U-Net unit: two 3x3 conv(+norm)+ReLU layers."""

  def __init__(self, in_features: int, out_features: int, **kwargs):
    self.conv1 = ConvNormReLU(in_features, out_features, **kwargs)
    self.conv2 = ConvNormReLU(out_features, out_features, **kwargs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return self.conv2(self.conv1(x, train=train), train=train)


class EncoderLevel(nnx.Module):
  """One contracting level: 2x2 max-pool (except the first level), then DoubleConv.

  Pooling at the start of a level, not the end, makes each level's output
  the skip connection itself.
  """

  def __init__(self, in_features: int, out_features: int, *, pool: bool, **kwargs):
    self.pool = pool
    self.convs = DoubleConv(in_features, out_features, **kwargs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if self.pool:
      x = layers.max_pool(x, 2, 2)
    return self.convs(x, train=train)


def check_options(padding: str, norm: str, depth: int) -> None:
  """ValueError for an unknown padding or normalisation or a depth below 1."""
  if padding not in PADDINGS:
    raise ValueError(f'Unknown U-Net padding {padding!r}; valid choices: {PADDINGS}.')
  if norm not in NORMS:
    raise ValueError(f'Unknown U-Net normalisation {norm!r}; valid choices: {NORMS}.')
  if depth < 1:
    raise ValueError(f'U-Net depth must be at least 1 (down-steps), got {depth}.')


def build_levels(in_channels: int, widths: Sequence[int], *, padding: str, norm: str,
                 momentum: float, rngs: nnx.Rngs) -> list[EncoderLevel]:
  """The encoder levels for ``widths`` (one per level, bottleneck last)."""
  levels, previous = [], in_channels
  for index, width in enumerate(widths):
    levels.append(EncoderLevel(previous, width, pool=index > 0, padding=padding, norm=norm,
                               momentum=momentum, rngs=rngs))
    previous = width
  return levels


def run_levels(levels, x: jax.Array, *, train: bool, frozen_blocks: int = 0) -> list[jax.Array]:
  """Every level's output; the first ``frozen_blocks`` use BatchNorm running stats."""
  outputs = []
  for index, level in enumerate(levels):
    x = level(x, train=train and index >= frozen_blocks)
    outputs.append(x)
  return outputs


def level_names(depth: int) -> tuple[str, ...]:
  return tuple(f'enc{i + 1}' for i in range(depth)) + ('bottleneck',)


class UNetEncoder(nnx.Module):
  """The contracting path: ``depth`` down-steps, widths ``width * 2**level``.

  ``dropout`` (the paper's "drop-out layers at the end of the contracting
  path") applies to the bottleneck in training and needs a ``dropout_key``.
  """

  def __init__(self, in_channels: int = 1, *, depth: int = 4, width: int = 32,
               padding: str = 'SAME', norm: str = 'batch', dropout: float = 0.0,
               batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    check_options(padding, norm, depth)
    self.depth, self.padding = depth, padding
    self.widths = tuple(width * 2**level for level in range(depth + 1))
    self.blocks = nnx.List(build_levels(in_channels, self.widths, padding=padding, norm=norm,
                                        momentum=batchnorm_momentum, rngs=rngs))
    self.block_names = level_names(depth)
    self.dropout = nnx.Dropout(dropout)

  def __call__(self, x: jax.Array, *, train: bool, frozen_blocks: int = 0,
               dropout_key: jax.Array | None = None) -> tuple[jax.Array, list[jax.Array]]:
    """(bottleneck, skips from the finest level to the coarsest)."""
    outputs = run_levels(self.blocks, x, train=train, frozen_blocks=frozen_blocks)
    bottleneck = outputs[-1]
    if train and self.dropout.rate > 0 and frozen_blocks <= self.depth:
      if dropout_key is None:
        raise ValueError(f'UNetEncoder has dropout {self.dropout.rate}: pass dropout_key '
                         'to train it, or set dropout=0.')
      bottleneck = self.dropout(bottleneck, deterministic=False, rngs=dropout_key)
    return bottleneck, outputs[:-1]


class DecoderLevel(nnx.Module):
  """2x2 up-convolution, (cropped, optionally gated) skip concatenated, DoubleConv."""

  def __init__(self, in_features: int, out_features: int, *, skip: bool, attention: bool,
               **kwargs):
    self.up = nnx.ConvTranspose(in_features, out_features, (2, 2), strides=(2, 2),
                                padding='VALID', rngs=kwargs['rngs'])
    self.gate = (attention_lib.AttentionGate(out_features, in_features,
                                             max(1, out_features // 2), rngs=kwargs['rngs'])
                 if skip and attention else None)
    self.convs = DoubleConv(2 * out_features if skip else out_features, out_features,
                            **kwargs)

  def __call__(self, x: jax.Array, skip: jax.Array | None, *, train: bool) -> jax.Array:
    up = layers.patch_conv_transpose(self.up, x)
    if skip is not None:
      skip = center_crop(skip, up.shape[1:3])
      if self.gate is not None:
        skip = self.gate(skip, x)  # gated by the coarser map, before its up-sampling
      up = jnp.concatenate([skip, up], axis=-1)
    return self.convs(up, train=train)


class UNet(nnx.Module):
  """U-Net; ``attention=True`` gives the Attention U-Net, ``skips=False`` a plain
  encoder-decoder. Returns ``out_channels`` logits per pixel (no activation).
  """

  def __init__(self, in_channels: int = 1, out_channels: int = 1, *, depth: int = 4,
               width: int = 32, padding: str = 'SAME', norm: str = 'batch',
               attention: bool = False, skips: bool = True, dropout: float = 0.0,
               batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    self.encoder = UNetEncoder(in_channels, depth=depth, width=width, padding=padding,
                               norm=norm, dropout=dropout,
                               batchnorm_momentum=batchnorm_momentum, rngs=rngs)
    self.skips = skips
    widths = self.encoder.widths
    self.decoder = nnx.List([
        DecoderLevel(widths[level + 1], widths[level], skip=skips, attention=attention,
                     padding=padding, norm=norm, momentum=batchnorm_momentum, rngs=rngs)
        for level in reversed(range(depth))])
    self.logits = nnx.Conv(widths[0], out_channels, (1, 1),
                           conv_general_dilated=layers.conv_general_dilated, rngs=rngs)

  def output_size(self, input_size: int) -> int:
    """Output side for an input side; ValueError naming the nearest valid sides."""
    return output_size(input_size, self.encoder.depth, self.encoder.padding)

  def check_input(self, shape: Sequence[int]) -> None:
    """ValueError unless both sides of an NHWC ``shape`` are valid inputs."""
    for side in shape[1:3]:
      self.output_size(side)

  def __call__(self, x: jax.Array, *, train: bool, frozen_blocks: int = 0,
               dropout_key: jax.Array | None = None) -> jax.Array:
    """Per-pixel logits (N, H', W', out_channels); H' = output_size(H)."""
    self.check_input(x.shape)
    x, skips = self.encoder(x, train=train, frozen_blocks=frozen_blocks,
                            dropout_key=dropout_key)
    for level, skip in zip(self.decoder, reversed(skips)):
      x = level(x, skip if self.skips else None, train=train)
    return self.logits(x)


class UNetAutoencoder(UNet):
  """U-Net trained to reproduce its input, for self-supervised pretraining.

  ``skips`` defaults to False: with skip connections the finest level can copy
  the input straight to the output, so the encoder's deep levels (the ones
  reused by ``unet_encoder.EncoderClassifierBackbone``) would learn nothing.
  The output is linear (train with MSE against ``reconstruction_target``).
  """

  def __init__(self, in_channels: int = 1, *, depth: int = 4, width: int = 32,
               padding: str = 'SAME', norm: str = 'batch', skips: bool = False,
               dropout: float = 0.0, batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    super().__init__(in_channels, in_channels, depth=depth, width=width, padding=padding,
                     norm=norm, attention=False, skips=skips, dropout=dropout,
                     batchnorm_momentum=batchnorm_momentum, rngs=rngs)

  def reconstruction_target(self, images: jax.Array) -> jax.Array:
    """What the output should equal: the input, centre-cropped when unpadded."""
    return center_crop(images, [self.output_size(side) for side in images.shape[1:3]])
