"""Backbone + head, with the freeze boundary given per call."""

from flax import nnx
import jax

from mammojax.models import imagenet_input


class Classifier(nnx.Module):
  """An image classifier made of a block-structured backbone and a head.

  ``frozen_blocks`` is the number of leading backbone blocks that do not train:
  their BatchNorm layers run on their running statistics (and so never update
  them), whatever ``train`` says.
  """

  def __init__(self, backbone: nnx.Module, head: nnx.Module, *, input_mode: str = 'none',
               input_channels: int = 1):
    self.backbone = backbone
    self.head = head
    self.input_mode = input_mode  # the scaling pretrained weights expect (imagenet_input)
    self.input_channels = input_channels

  @property
  def block_names(self) -> tuple[str, ...]:
    return self.backbone.block_names

  def scale_input(self, images: jax.Array) -> jax.Array:
    """Gray [0, 1] → what pretrained weights expect; unchanged without weights."""
    if self.input_mode == 'none' and self.input_channels == images.shape[-1]:
      return images
    return imagenet_input.scale_input(images, self.input_mode, self.input_channels)

  def __call__(self, images: jax.Array, *, train: bool, frozen_blocks: int = 0,
               dropout_key: jax.Array | None = None) -> jax.Array:
    features = self.backbone(self.scale_input(images), train=train, frozen_blocks=frozen_blocks)
    return self.head(features, train=train, dropout_key=dropout_key)
