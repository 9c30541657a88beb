"""Where the breast (or thorax) is in an image, and which side it lies on.

Mammograms carry bright labels, markers and scanner letters in the corners,
disconnected from the breast. A threshold, the largest connected component,
hole filling and a small opening (which cuts thin bridges from the breast to
a marker) keep the breast and drop everything else.
"""

import cv2
import numpy as np

SIDES = ('left', 'right')
# Laterality as records spell it → the image side the breast lies on. This is
# the standard storage convention (CBIS-DDSM, INbreast): a left breast's chest
# wall is at the image's left edge, a right breast's at its right edge.
LATERALITY_SIDES = {'l': 'left', 'left': 'left', 'r': 'right', 'right': 'right'}


def to_uint8_view(image: np.ndarray) -> np.ndarray:
  """The image stretched min–max to uint8, for Otsu (cv2 needs 8 bits) and display."""
  return cv2.normalize(np.asarray(image, np.float32), None, 0, 255, cv2.NORM_MINMAX,
                       dtype=cv2.CV_8U)


def _default_opening(shape: tuple[int, ...]) -> int:
  # ~1% of the short side: wider than a marker's thin bridge, far narrower than a breast.
  return max(3, round(min(shape[:2]) / 100) | 1)


def _threshold(view: np.ndarray, threshold: float) -> np.ndarray:
  if threshold > 0:
    _, binary = cv2.threshold(view, round(255 * threshold), 1, cv2.THRESH_BINARY)
  else:
    _, binary = cv2.threshold(view, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
  return binary


def _largest_component(binary: np.ndarray) -> np.ndarray:
  count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
  if count < 2:
    return np.zeros_like(binary)
  largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))  # label 0 is the background
  return (labels == largest).astype(np.uint8)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
  contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
  filled = np.zeros_like(mask)
  cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
  return filled


def breast_region(image: np.ndarray, *, threshold: float = 0.0,
                  opening: int | None = None) -> np.ndarray:
  """A uint8 0/1 mask of the breast: the largest bright component, holes filled.

  Args:
    image: 2-D grayscale, any dtype (uint8, uint16, float).
    threshold: 0 for Otsu's threshold; else a fixed fraction in (0, 1) of the
      image's own min–max intensity range.
    opening: side in pixels of the elliptic opening that cuts thin bridges to
      labels; None picks ~1% of the short side; 0 or 1 skips it.

  An image with no foreground at all (constant) gets an all-ones mask: there
  is nothing to separate, and blanking the whole image would destroy it.
  """
  if image.ndim != 2:
    raise ValueError(f'breast_region needs a 2-D grayscale image; got shape {image.shape}.')
  if not 0 <= threshold < 1:
    raise ValueError(f'mask threshold {threshold} must be in [0, 1) (0 = Otsu).')
  binary = _threshold(to_uint8_view(image), threshold)
  size = _default_opening(image.shape) if opening is None else opening
  if size > 1:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
  mask = _fill_holes(_largest_component(binary))
  return mask if mask.any() else np.ones_like(mask)


def apply_breast_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """The image with every pixel outside ``mask`` set to 0 (same dtype and shape)."""
  if mask.shape != image.shape[:2]:
    raise ValueError(f'Breast mask of shape {mask.shape} does not match the image of '
                     f'shape {image.shape}; compute it on the image it is applied to.')
  return np.where(mask.reshape(mask.shape + (1,) * (image.ndim - 2)) > 0, image,
                  np.zeros((), image.dtype)).astype(image.dtype)


def breast_side(image: np.ndarray) -> str:
  """'left' or 'right': the image half holding more intensity (breast mass).

  The odd middle column counts for neither half; a tie says 'left'.
  """
  half = image.shape[1] // 2
  left = float(np.sum(image[:, :half], dtype=np.float64))
  right = float(np.sum(image[:, image.shape[1] - half:], dtype=np.float64))
  return 'right' if right > left else 'left'


def side_of_laterality(laterality: str) -> str:
  """'left'/'right' from a record's laterality ('L', 'LEFT', 'r', 'Right', ...)."""
  side = LATERALITY_SIDES.get(str(laterality).strip().lower())
  if side is None:
    raise ValueError(f'Unknown laterality {laterality!r}; valid: LEFT, RIGHT, L, R '
                     '(any case), or None/"" to decide from the image.')
  return side


def flip_to_side(image: np.ndarray, side: str,
                 laterality: str | None = None) -> tuple[np.ndarray, bool]:
  """Mirrors the image left–right so the breast lies on ``side``.

  The current side comes from ``laterality`` when given, else from the image
  (``breast_side``). Returns ``(image, flipped)``: flip the masks the same way
  (``cv2.flip(mask, 1)``) when ``flipped`` is True.
  """
  if side not in SIDES:
    raise ValueError(f'Unknown side {side!r}; valid: {SIDES}.')
  current = side_of_laterality(laterality) if laterality else breast_side(image)
  if current == side:
    return image, False
  return cv2.flip(image, 1), True
