"""Region-of-interest patches: bounding box × margin, square, resized."""

import cv2
import numpy as np


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
  """(top, left, bottom, right) of the nonzero pixels, bottom/right exclusive."""
  rows = np.flatnonzero(mask.any(axis=1))
  cols = np.flatnonzero(mask.any(axis=0))
  if rows.size == 0:
    raise ValueError('The ROI mask is empty (no nonzero pixel).')
  return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def square_box(bbox: tuple[int, int, int, int], margin: float) -> tuple[int, int, int, int]:
  """A square around the bbox centre, side = longest bbox side × margin."""
  top, left, bottom, right = bbox
  side = max(1, round(max(bottom - top, right - left) * margin))
  centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
  new_top, new_left = round(centre_y - side / 2), round(centre_x - side / 2)
  return new_top, new_left, new_top + side, new_left + side


def crop_padded(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
  """Crops ``box``; parts outside the image are filled with zeros."""
  top, left, bottom, right = box
  out = np.zeros((bottom - top, right - left), image.dtype)
  src_top, src_left = max(top, 0), max(left, 0)
  src_bottom, src_right = min(bottom, image.shape[0]), min(right, image.shape[1])
  if src_bottom > src_top and src_right > src_left:
    out[src_top - top:src_bottom - top, src_left - left:src_right - left] = (
        image[src_top:src_bottom, src_left:src_right])
  return out


def roi_patch(image: np.ndarray, mask: np.ndarray, *, margin: float, size: int) -> np.ndarray:
  """The lesion's square crop (bbox × margin) resized to ``size × size``."""
  mask = resize_mask(mask, image.shape)
  crop = crop_padded(image, square_box(mask_bbox(mask), margin))
  interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
  return cv2.resize(crop, (size, size), interpolation=interpolation)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """Binary uint8 mask at ``shape`` (nearest neighbour keeps it binary)."""
  if mask.shape != tuple(shape):
    mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
  return (mask > 0).astype(np.uint8)
