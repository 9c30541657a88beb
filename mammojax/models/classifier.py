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

  def __call__(self, images: jax.Array, *, train: bool, frozen_blocks: int = 0,
               dropout_key: jax.Array | None = None) -> jax.Array:
    if self.input_mode != 'none' or self.input_channels != images.shape[-1]:
      images = imagenet_input.scale_input(images, self.input_mode, self.input_channels)
    features = self.backbone(images, train=train, frozen_blocks=frozen_blocks)
    return self.head(features, train=train, dropout_key=dropout_key)
