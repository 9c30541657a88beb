"""Clean predicted masks: threshold, fill holes, drop specks (OpenCV)."""

import cv2
import numpy as np


def _as_binary_2d(mask, what: str = 'mask') -> np.ndarray:
  """(H, W) or (H, W, 1) -> (H, W) uint8 in {0, 1}; nonzero is foreground."""
  mask = np.asarray(mask)
  if mask.ndim == 3 and mask.shape[-1] == 1:
    mask = mask[..., 0]
  if mask.ndim != 2:
    raise ValueError(f'{what} must be (H, W) or (H, W, 1); got shape {mask.shape}.')
  return (mask != 0).astype(np.uint8)


def fill_holes(mask) -> np.ndarray:
  """Fills background regions enclosed by foreground; returns uint8 0/1 (H, W).

  Flood-fills the background from a one-pixel zero border, so whatever the
  fill cannot reach is a hole. The fill is 4-connected, i.e. foreground counts
  as 8-connected: a ring drawn with diagonal steps still encloses its inside.
  """
  binary = _as_binary_2d(mask)
  flooded = np.pad(binary, 1)  # the zero border joins every edge-touching background region
  cv2.floodFill(flooded, None, (0, 0), 1, flags=4)
  holes = flooded[1:-1, 1:-1] == 0
  return binary | holes.astype(np.uint8)


def remove_small_components(mask, min_area: int) -> np.ndarray:
  """Drops 8-connected foreground components under ``min_area`` pixels; uint8 0/1."""
  if min_area < 0:
    raise ValueError(f'min_area must be >= 0 pixels; got {min_area}.')
  binary = _as_binary_2d(mask)
  if min_area <= 1:
    return binary
  _, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
  keep = stats[:, cv2.CC_STAT_AREA] >= min_area
  keep[0] = False  # label 0 is the background
  return keep[labels].astype(np.uint8)


def postprocess_mask(prob, *, threshold: float, min_area: int = 0,
                     fill: bool = True) -> np.ndarray:
  """Probability map (H, W) or (H, W, 1) -> cleaned uint8 0/1 mask (H, W).

  Order: threshold (``prob >= threshold``), fill holes, then drop components
  under ``min_area`` pixels — filling first so a lesion is judged on its full
  area, not on the ring the model happened to draw.
  """
  if not 0.0 <= threshold <= 1.0:
    raise ValueError(f'threshold must be a probability in [0, 1]; got {threshold}.')
  prob = np.asarray(prob)
  if prob.ndim == 3 and prob.shape[-1] == 1:
    prob = prob[..., 0]
  if prob.ndim != 2:
    raise ValueError(f'Probability map must be (H, W) or (H, W, 1); got shape {prob.shape}.')
  mask = (prob >= threshold).astype(np.uint8)
  if fill:
    mask = fill_holes(mask)
  return remove_small_components(mask, min_area)
