"""A classifier backbone over a U-Net encoder, pretrained as a U-Net autoencoder.

Features come from several encoder depths (by default the last three levels,
bottleneck included). With ``attention=True`` each goes through
3x3 conv → squeeze-and-excitation → 2x2 max-pool → global max-pool → dense 128,
and the results are concatenated (3 x 128 = 384 features); with
``attention=False`` each depth is only global-max-pooled (the variant of the
notes without attention).

The encoder levels and the feature block all live in ``self.blocks``
(``enc1 … bottleneck, features``) because ``training.optim`` labels parameters
by their ``backbone/blocks/<index>`` path; unfreezing the last N blocks then
means the same as for every other backbone.
"""

from collections.abc import Sequence

from flax import nnx
import jax
import jax.numpy as jnp

from mammojax.models import attention as attention_lib
from mammojax.models import unet


class FeatureTap(nnx.Module):
  """One depth's features: conv → SE → 2x2 max-pool → global max-pool → dense + ReLU."""

  def __init__(self, in_features: int, out_features: int, *, se_reduction: int,
               rngs: nnx.Rngs):
    self.conv = nnx.Conv(in_features, in_features, (3, 3), rngs=rngs)
    self.se = attention_lib.SqueezeExcitation(in_features, reduction=se_reduction, rngs=rngs)
    self.dense = nnx.Linear(in_features, out_features, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.se(nnx.relu(self.conv(x)))
    # The 2x2 pool is kept to match the published design (a global max after it
    # differs only at odd edges); SAME padding keeps a 1x1 bottleneck alive.
    x = nnx.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')
    return nnx.relu(self.dense(jnp.max(x, axis=(1, 2))))


class FeatureBlock(nnx.Module):
  """Concatenated features of the tapped depths, as an (N, 1, 1, F) map."""

  def __init__(self, widths: Sequence[int], *, attention: bool, features_per_level: int,
               se_reduction: int, rngs: nnx.Rngs):
    self.taps = nnx.List([
        FeatureTap(width, features_per_level, se_reduction=se_reduction, rngs=rngs)
        for width in widths]) if attention else None
    self.out_features = (features_per_level * len(widths)) if attention else sum(widths)

  def __call__(self, maps: Sequence[jax.Array], *, train: bool) -> jax.Array:
    del train  # no BatchNorm or dropout here; the signature matches the other blocks
    if self.taps is None:
      pooled = [jnp.max(x, axis=(1, 2)) for x in maps]
    else:
      pooled = [tap(x) for tap, x in zip(self.taps, maps)]
    # A 1x1 map makes the head's global pooling (avg or max) a no-op.
    return jnp.concatenate(pooled, axis=-1)[:, None, None, :]


def check_feature_levels(feature_levels: Sequence[int], depth: int) -> tuple[int, ...]:
  """Level indices (negative counts from the bottleneck) as sorted non-negative ints."""
  num_levels = depth + 1
  if not feature_levels or any(not -num_levels <= i < num_levels for i in feature_levels):
    raise ValueError(f'feature_levels {tuple(feature_levels)} must be a non-empty list of '
                     f'level indices in -{num_levels}..{num_levels - 1} for depth {depth} '
                     f'(levels: {", ".join(unet.level_names(depth))}).')
  return tuple(sorted({i % num_levels for i in feature_levels}))


class EncoderClassifierBackbone(nnx.Module):
  """U-Net encoder levels + a feature block, looking like any other backbone.

  ``__call__`` returns (N, 1, 1, out_features). Build it with the same
  ``depth``, ``width``, ``padding`` and ``norm`` as the autoencoder whose
  encoder ``copy_encoder`` brings in.
  """

  def __init__(self, in_channels: int = 1, *, depth: int = 4, width: int = 32,
               padding: str = 'SAME', norm: str = 'batch', attention: bool = True,
               feature_levels: Sequence[int] = (-3, -2, -1), features_per_level: int = 128,
               se_reduction: int = 16, batchnorm_momentum: float = 0.9, rngs: nnx.Rngs):
    unet.check_options(padding, norm, depth)
    self.depth, self.padding = depth, padding
    self.widths = tuple(width * 2**level for level in range(depth + 1))
    self.feature_levels = check_feature_levels(feature_levels, depth)
    levels = unet.build_levels(in_channels, self.widths, padding=padding, norm=norm,
                               momentum=batchnorm_momentum, rngs=rngs)
    features = FeatureBlock([self.widths[i] for i in self.feature_levels],
                            attention=attention, features_per_level=features_per_level,
                            se_reduction=se_reduction, rngs=rngs)
    self.blocks = nnx.List(levels + [features])
    self.block_names = unet.level_names(depth) + ('features',)
    self.out_features = features.out_features

  def __call__(self, x: jax.Array, *, train: bool, frozen_blocks: int = 0) -> jax.Array:
    """Features (N, 1, 1, out_features); the first ``frozen_blocks`` use running stats."""
    if min(x.shape[1:3]) < 2**self.depth:
      raise ValueError(f'The U-Net encoder (depth {self.depth}) needs input sides of at least '
                       f'{2**self.depth} pixels; got {x.shape[1:3]}.')
    outputs = unet.run_levels(self.blocks[:-1], x, train=train, frozen_blocks=frozen_blocks)
    return self.blocks[-1]([outputs[i] for i in self.feature_levels],
                           train=train and len(self.blocks) - 1 >= frozen_blocks)


def _shapes(module: nnx.Module):
  return jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(module)))


def copy_encoder(source_model: nnx.Module, target_backbone: nnx.Module) -> None:
  """Copies an autoencoder's (or U-Net's) encoder into a classifier backbone, in place.

  ``source_model`` is a ``unet.UNet``/``UNetAutoencoder`` or a ``UNetEncoder``;
  ``target_backbone`` an ``EncoderClassifierBackbone`` or a Classifier holding
  one. Parameters and BatchNorm statistics are copied; the feature block is
  left as it is.
  """
  encoder = getattr(source_model, 'encoder', source_model)
  backbone = getattr(target_backbone, 'backbone', target_backbone)
  if not isinstance(encoder, unet.UNetEncoder) or not isinstance(
      backbone, EncoderClassifierBackbone):
    raise ValueError('copy_encoder needs a U-Net/U-Net autoencoder (or UNetEncoder) and an '
                     f'EncoderClassifierBackbone; got {type(source_model).__name__} and '
                     f'{type(target_backbone).__name__}.')
  source_levels, target_levels = list(encoder.blocks), backbone.blocks[:-1]
  if (encoder.padding != backbone.padding or
      [_shapes(b) for b in source_levels] != [_shapes(b) for b in target_levels]):
    raise ValueError(f'The encoders differ: source widths {encoder.widths}, padding '
                     f'{encoder.padding}; target widths {backbone.widths}, padding '
                     f'{backbone.padding}. Build the backbone with the depth, width, padding '
                     'and norm of the autoencoder.')
  for source, target in zip(source_levels, target_levels):
    # Copies, not shared buffers: a train step that donates the backbone's state
    # must not invalidate the autoencoder's arrays.
    nnx.update(target, jax.tree.map(jnp.copy, nnx.state(source)))
