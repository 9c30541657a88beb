"""Segmentation metrics on binary masks: Dice, IoU, pixel accuracy, threshold choice.

Convention: when a prediction and its true mask are both empty, Dice and IoU
are 1.0 (nothing to find, nothing found — the Kaggle convention), so images
without lesions reward empty predictions instead of being undefined.
"""

import numpy as np

DEFAULT_THRESHOLDS = np.linspace(0.1, 0.9, 17)


def _as_batch(array, what: str) -> np.ndarray:
  """(N, H, W) or (N, H, W, 1) -> (N, H*W)."""
  array = np.asarray(array)
  if array.ndim == 4 and array.shape[-1] == 1:
    array = array[..., 0]
  if array.ndim != 3:
    raise ValueError(f'{what} must be (N, H, W) or (N, H, W, 1); got shape {array.shape}.')
  return array.reshape(array.shape[0], -1)


def _counts(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, ...]:
  """True positives, predicted and true pixel counts along the last axis."""
  true_pos = np.count_nonzero(pred & true, axis=-1)
  return true_pos, np.count_nonzero(pred, axis=-1), np.count_nonzero(true, axis=-1)


def _dice_from_counts(true_pos, n_pred, n_true) -> np.ndarray:
  total = n_pred + n_true
  return np.where(total == 0, 1.0, 2.0 * true_pos / np.maximum(total, 1))


def _iou_from_counts(true_pos, n_pred, n_true) -> np.ndarray:
  union = n_pred + n_true - true_pos
  return np.where(union == 0, 1.0, true_pos / np.maximum(union, 1))


def _check_same_shape(pred, true) -> None:
  if pred.shape != true.shape:
    raise ValueError(f'Prediction shape {pred.shape} differs from mask shape {true.shape}.')


def dice(pred, true) -> float:
  """Dice ``2|P∩T| / (|P|+|T|)`` of two binary masks (nonzero = foreground); 1.0 if both empty."""
  pred, true = np.asarray(pred) != 0, np.asarray(true) != 0
  _check_same_shape(pred, true)
  return float(_dice_from_counts(*_counts(pred.ravel(), true.ravel())))


def iou(pred, true) -> float:
  """IoU (Jaccard) ``|P∩T| / |P∪T|`` of two binary masks; 1.0 if both empty."""
  pred, true = np.asarray(pred) != 0, np.asarray(true) != 0
  _check_same_shape(pred, true)
  return float(_iou_from_counts(*_counts(pred.ravel(), true.ravel())))


def segmentation_metrics(probs, masks, threshold: float = 0.5) -> dict:
  """Dice/IoU per image (averaged) and pooled over all pixels, and pixel accuracy.

  ``probs`` are sigmoid outputs and ``masks`` the true masks, both (N, H, W) or
  (N, H, W, 1); a pixel is predicted foreground when ``prob >= threshold`` and
  is truly foreground when ``mask >= 0.5``. Returns plain floats under 'dice',
  'iou' (means of per-image scores), 'dice_overall', 'iou_overall' (one score
  over all pixels of all images) and 'pixel_accuracy'.
  """
  pred = _as_batch(probs, 'probs') >= threshold
  true = _as_batch(masks, 'masks') >= 0.5
  _check_same_shape(pred, true)
  per_image = _counts(pred, true)
  pooled = tuple(np.sum(count) for count in per_image)
  return {
      'dice': float(np.mean(_dice_from_counts(*per_image))),
      'iou': float(np.mean(_iou_from_counts(*per_image))),
      'dice_overall': float(_dice_from_counts(*pooled)),
      'iou_overall': float(_iou_from_counts(*pooled)),
      'pixel_accuracy': float(np.mean(pred == true)),
  }


def best_threshold(probs, masks, candidates=DEFAULT_THRESHOLDS) -> tuple[float, float]:
  """(threshold, mean per-image Dice) of the candidate maximising mean Dice.

  Meant for the validation set; the chosen threshold is then stored with the
  run and reused on test/predict. Ties go to the earliest candidate (the lowest
  for the default ascending grid).
  """
  candidates = np.asarray(candidates, np.float64).ravel()
  if candidates.size == 0:
    raise ValueError('best_threshold needs at least one candidate threshold.')
  probs = _as_batch(probs, 'probs')
  true = _as_batch(masks, 'masks') >= 0.5
  _check_same_shape(probs, true)
  scores = [np.mean(_dice_from_counts(*_counts(probs >= t, true))) for t in candidates]
  best = int(np.argmax(scores))
  return float(candidates[best]), float(scores[best])
