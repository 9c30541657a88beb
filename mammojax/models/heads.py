"""Classification head: global pooling → rule-of-thumb dense layers → logits."""

import math

from flax import nnx
import jax
import jax.numpy as jnp

POOLINGS = ('avg', 'max')


def rule_of_thumb_width(previous_width: int) -> int:
  """Square root of the previous width, rounded to the nearest power of two.

  The rule from the researchers' notes: 2048 → 32, 1024 → 32, 128 → 8.
  Ties go to the larger power.
  """
  root = math.sqrt(previous_width)
  lower = 2**math.floor(math.log2(root))
  upper = lower * 2
  return upper if upper - root <= root - lower else lower


class Head(nnx.Module):
  """Pooling, ``num_hidden`` ReLU dense layers with dropout, then logits."""

  def __init__(self, in_features: int, num_classes: int, *, num_hidden: int = 1,
               dropout: float = 0.5, pooling: str = 'avg', rngs: nnx.Rngs):
    if pooling not in POOLINGS:
      raise ValueError(f'Unknown pooling {pooling!r}; choose one of {POOLINGS}.')
    self.pooling = pooling
    hidden, width = [], in_features
    for _ in range(num_hidden):
      next_width = rule_of_thumb_width(width)
      hidden.append(nnx.Linear(width, next_width, rngs=rngs))
      width = next_width
    self.hidden = nnx.List(hidden)
    self.dropout = nnx.Dropout(dropout)
    self.logits = nnx.Linear(width, num_classes, rngs=rngs)

  def __call__(self, features: jax.Array, *, train: bool,
               dropout_key: jax.Array | None = None) -> jax.Array:
    pool = jnp.mean if self.pooling == 'avg' else jnp.max
    x = pool(features, axis=(1, 2))
    for index, layer in enumerate(self.hidden):
      x = nnx.relu(layer(x))
      if train:
        x = self.dropout(x, deterministic=False,
                         rngs=jax.random.fold_in(dropout_key, index))
    return self.logits(x)
