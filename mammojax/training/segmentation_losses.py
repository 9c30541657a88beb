"""Binary segmentation losses on logits with per-example weights (jit-able).

Every loss is computed per image, then averaged over the batch with the
per-example ``weights`` (0 marks padding examples added to fill a batch), so a
padded batch gives the same loss as the unpadded one.
"""

import jax
import jax.numpy as jnp
import optax

SEGMENTATION_LOSSES = ('bce', 'dice', 'bce_dice', 'focal', 'tversky')


def _sum_per_image(x: jax.Array) -> jax.Array:
  """Sums over every axis but the batch axis: (N, H, W, 1) -> (N,)."""
  return jnp.sum(x, axis=tuple(range(1, x.ndim)))


def _mean_per_image(x: jax.Array) -> jax.Array:
  return jnp.mean(x, axis=tuple(range(1, x.ndim)))


def bce_per_image(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean pixel binary cross-entropy per image, shape (N,)."""
  return _mean_per_image(optax.sigmoid_binary_cross_entropy(logits, targets))


def focal_per_image(logits: jax.Array, targets: jax.Array, gamma: float = 2.0) -> jax.Array:
  """Mean pixel binary focal loss (Lin et al. 2017, no alpha balancing) per image."""
  return _mean_per_image(optax.sigmoid_focal_loss(logits, targets, gamma=gamma))


def tversky_per_image(logits: jax.Array, targets: jax.Array, *, alpha: float, beta: float,
                      smooth: float = 1.0) -> jax.Array:
  """``1 - (TP + s) / (TP + alpha*FN + beta*FP + s)`` on soft counts, per image.

  ``alpha`` weighs false negatives and ``beta`` false positives (Abraham &
  Khan 2019 convention); alpha = beta = 0.5 with s = 0 is the soft Dice loss. The smoothing
  ``s`` makes an empty prediction of an empty mask a perfect score (loss 0)
  instead of 0/0.
  """
  probs = jax.nn.sigmoid(logits)
  true_pos = _sum_per_image(probs * targets)
  false_neg = _sum_per_image((1.0 - probs) * targets)
  false_pos = _sum_per_image(probs * (1.0 - targets))
  index = (true_pos + smooth) / (true_pos + alpha * false_neg + beta * false_pos + smooth)
  return 1.0 - index


def dice_per_image(logits: jax.Array, targets: jax.Array, smooth: float = 1.0) -> jax.Array:
  """Soft Dice loss ``1 - (2*sum(p*t) + s) / (sum(p) + sum(t) + s)`` per image."""
  probs = jax.nn.sigmoid(logits)
  overlap = _sum_per_image(probs * targets)
  total = _sum_per_image(probs) + _sum_per_image(targets)
  return 1.0 - (2.0 * overlap + smooth) / (total + smooth)


def _check_inputs(logits, targets, weights, name: str) -> None:
  if name not in SEGMENTATION_LOSSES:
    raise ValueError(f'Unknown segmentation loss {name!r} (config field train.loss); '
                     f'valid choices: {SEGMENTATION_LOSSES}.')
  if logits.shape != targets.shape:
    raise ValueError(f'Segmentation logits have shape {logits.shape} but targets '
                     f'{targets.shape}; both must be (N, H, W, 1).')
  if weights.shape != logits.shape[:1]:
    raise ValueError(f'Weights have shape {weights.shape}; expected ({logits.shape[0]},), '
                     'one per example.')


def segmentation_loss(logits: jax.Array, targets: jax.Array, weights: jax.Array, *,
                      name: str = 'bce_dice', smooth: float = 1.0, focal_gamma: float = 2.0,
                      tversky_alpha: float = 0.7, tversky_beta: float = 0.3) -> jax.Array:
  """Weighted mean over the batch of a per-image segmentation loss (a scalar).

  Args:
    logits: (N, H, W, 1) raw scores (before the sigmoid).
    targets: (N, H, W, 1) masks with values in {0, 1}.
    weights: (N,) per-example weights; 0 marks padding examples.
    name: one of ``SEGMENTATION_LOSSES``: 'bce' (pixel BCE), 'dice' (soft Dice
      with ``smooth``), 'bce_dice' (their sum), 'focal' (binary focal,
      ``focal_gamma``), 'tversky' (``tversky_alpha`` on false negatives,
      ``tversky_beta`` on false positives; the defaults 0.7/0.3 favour recall,
      which suits small lesions).
  """
  targets = jnp.asarray(targets, logits.dtype)
  weights = jnp.asarray(weights, jnp.float32)
  _check_inputs(logits, targets, weights, name)
  if name == 'bce':
    per_image = bce_per_image(logits, targets)
  elif name == 'dice':
    per_image = dice_per_image(logits, targets, smooth)
  elif name == 'bce_dice':
    per_image = bce_per_image(logits, targets) + dice_per_image(logits, targets, smooth)
  elif name == 'focal':
    per_image = focal_per_image(logits, targets, focal_gamma)
  else:
    per_image = tversky_per_image(logits, targets, alpha=tversky_alpha, beta=tversky_beta,
                                  smooth=smooth)
  # where(), not a product: a padding example holding NaN/inf must not leak into the sum.
  per_image = jnp.where(weights > 0, per_image.astype(jnp.float32), 0.0)
  return jnp.sum(per_image * weights) / jnp.maximum(jnp.sum(weights), 1e-9)
