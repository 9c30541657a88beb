"""Classification losses on integer labels with per-example weights."""

import jax
import jax.numpy as jnp
import optax

LOSSES = ('cross_entropy', 'focal')


def classification_loss(logits: jax.Array, labels: jax.Array, weights: jax.Array, *,
                        name: str = 'cross_entropy', class_weights=None,
                        focal_gamma: float = 2.0) -> jax.Array:
  """Weighted mean loss; ``weights`` zero out padding examples.

  ``class_weights`` (one per class) rescale examples by their label, as Keras'
  ``class_weight``; 'focal' is the multi-class focal loss (Lin et al. 2017).
  """
  per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if name == 'focal':
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]
    per_example = per_example * (1.0 - jnp.exp(log_p)) ** focal_gamma
  elif name != 'cross_entropy':
    raise ValueError(f'Unknown loss {name!r}; valid choices: {LOSSES}.')
  if class_weights is not None:
    weights = weights * jnp.asarray(class_weights, jnp.float32)[labels]
  return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1e-9)
