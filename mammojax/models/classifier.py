"""Backbone + head, with the freeze boundary given per call."""

from flax import nnx
import jax


class Classifier(nnx.Module):
  """An image classifier made of a block-structured backbone and a head.

  ``frozen_blocks`` is the number of leading backbone blocks that do not train:
  their BatchNorm layers run on their running statistics (and so never update
  them), whatever ``train`` says.
  """

  def __init__(self, backbone: nnx.Module, head: nnx.Module):
    self.backbone = backbone
    self.head = head

  @property
  def block_names(self) -> tuple[str, ...]:
    return self.backbone.block_names

  def __call__(self, images: jax.Array, *, train: bool, frozen_blocks: int = 0,
               dropout_key: jax.Array | None = None) -> jax.Array:
    features = self.backbone(images, train=train, frozen_blocks=frozen_blocks)
    return self.head(features, train=train, dropout_key=dropout_key)
