"""Patches cut from (image, mask) arrays: ROI crops, shifted crops, crop by mask,
and lesion/background patches sampled by the TFDS rules.

Every function is pure: arrays (and a ``numpy.random.Generator``) in,
arrays out. Each one that returns an image patch also returns the matching
mask patch (same box) when asked with ``return_mask=True``, so segmentation
and augmentation get both. The sampled patches (lesion and background, after
TFDS ``curated_breast_imaging_ddsm``) return masks always.
"""

import dataclasses

import cv2
import numpy as np

from mammojax.data import breast_mask as breast_lib

# Relaxation schedule of the sampled patches (as TFDS curated_breast_imaging_ddsm):
# after each level of ``tries_per_level`` random draws that did not yield
# ``count`` patches, minimum fractions shrink by 5% and maximum fractions grow
# by 5%. Sampling gives up, with a reason, once a minimum falls to 0.1 or a
# maximum reaches 0.9: 43 levels at most for lesion patches, 20 for background.
RELAX_MIN, RELAX_MAX = 0.95, 1.05
GIVE_UP_MIN, GIVE_UP_MAX = 0.1, 0.9


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
  """Crops ``box`` (any trailing channels kept); parts outside the image are zeros."""
  top, left, bottom, right = box
  out = np.zeros((bottom - top, right - left) + image.shape[2:], image.dtype)
  src_top, src_left = max(top, 0), max(left, 0)
  src_bottom, src_right = min(bottom, image.shape[0]), min(right, image.shape[1])
  if src_bottom > src_top and src_right > src_left:
    out[src_top - top:src_bottom - top, src_left - left:src_right - left] = (
        image[src_top:src_bottom, src_left:src_right])
  return out


def resize_patch(crop: np.ndarray, size: int) -> np.ndarray:
  """An image crop resized to ``size × size`` (area interpolation when shrinking)."""
  interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
  return cv2.resize(crop, (size, size), interpolation=interpolation)


def resize_mask_patch(crop: np.ndarray, size: int) -> np.ndarray:
  """A mask crop resized to ``size × size`` with nearest neighbour: it stays binary."""
  return cv2.resize(crop, (size, size), interpolation=cv2.INTER_NEAREST)


def crop_box(image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
             size: int | None, return_mask: bool):
  """Cuts ``box`` from the image (and mask), resized to ``size`` when given."""
  crop = crop_padded(image, box)
  crop = crop if size is None else resize_patch(crop, size)
  if not return_mask:
    return crop
  mask_part = crop_padded(mask, box)
  return crop, (mask_part if size is None else resize_mask_patch(mask_part, size))


def roi_patch(image: np.ndarray, mask: np.ndarray, *, margin: float, size: int,
              return_mask: bool = False):
  """The lesion's square crop (bbox × margin) resized to ``size × size``.

  The notes use margins 1.2 and 1.4. Returns the patch, or ``(patch,
  mask_patch)`` with ``return_mask=True`` (mask uint8 0/1, same box).
  """
  mask = resize_mask(mask, image.shape[:2])
  return crop_box(image, mask, square_box(mask_bbox(mask), margin), size, return_mask)


def iou(box_a: tuple[int, int, int, int], box_b: tuple[int, int, int, int]) -> float:
  """Intersection over union of two (top, left, bottom, right) boxes."""
  height = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])
  width = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])
  inter = max(height, 0) * max(width, 0)
  area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
  area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
  return inter / (area_a + area_b - inter)


def _random_shift(side: int, min_overlap: float, rng: np.random.Generator) -> tuple[int, int]:
  """A (dy, dx) shift of a side×side square keeping IoU ≥ min_overlap with itself.

  Two equal squares shifted by (dy, dx) overlap (side-|dy|)(side-|dx|) =
  inter, and IoU ≥ t ⟺ inter ≥ 2·side²·t/(1+t). dy is drawn first, then dx
  within what dy leaves, so every draw is valid: no rejection loop.
  """
  needed = 2 * side * side * min_overlap / (1 + min_overlap)
  max_dy = max(0, int(np.floor(side - needed / side + 1e-9)))  # 1e-9: float round-off
  dy = int(rng.integers(-max_dy, max_dy + 1))
  max_dx = max(0, int(np.floor(side - needed / (side - abs(dy)) + 1e-9)))
  dx = int(rng.integers(-max_dx, max_dx + 1))
  return dy, dx


def roi_crops(image: np.ndarray, mask: np.ndarray, *, size: int, margin: float, count: int,
              min_overlap: float = 0.9, rng: np.random.Generator,
              return_mask: bool = False):
  """``count`` square crops of the lesion, each randomly shifted from the centred one.

  Each crop has IoU ≥ ``min_overlap`` with the centred crop (bbox × margin;
  the notes ask for ≥ 90% overlap). Returns an array (count, size, size[, C]),
  or ``(crops, mask_crops)`` with ``return_mask=True``.
  """
  if not 0 < min_overlap <= 1:
    raise ValueError(f'min_overlap {min_overlap} must be in (0, 1].')
  mask = resize_mask(mask, image.shape[:2])
  top, left, bottom, right = square_box(mask_bbox(mask), margin)
  results = []
  for _ in range(count):
    dy, dx = _random_shift(bottom - top, min_overlap, rng)
    results.append(crop_box(image, mask, (top + dy, left + dx, bottom + dy, right + dx),
                            size, return_mask=True))
  shape = (0, size, size)
  images = np.stack([r[0] for r in results]) if results else np.zeros(shape, image.dtype)
  if not return_mask:
    return images
  return images, (np.stack([r[1] for r in results]) if results else np.zeros(shape, np.uint8))


def mask_crop(image: np.ndarray, mask: np.ndarray, *, size: int | None,
              border: int | tuple[int, int] = 0, return_mask: bool = False):
  """Crop by a (predicted) mask: its bounding box plus ``border`` pixels.

  As in the skin-lesion notes: the lesion's edge with the surrounding skin
  matters, so a guard band is kept; ``border`` is an int or (border_y,
  border_x), and the box is clipped to the image (no padding). The crop is
  resized to ``size × size`` unless ``size`` is None. An empty mask is a
  ValueError. Returns the crop, or ``(crop, mask_crop)`` with ``return_mask``.
  """
  border_y, border_x = (border, border) if isinstance(border, int) else border
  if border_y < 0 or border_x < 0:
    raise ValueError(f'border {border} must be >= 0 pixels.')
  mask = resize_mask(mask, image.shape[:2])
  if not mask.any():
    raise ValueError('Cannot crop by mask: the mask is empty (no nonzero pixel); check '
                     'the segmentation output or its threshold.')
  top, left, bottom, right = mask_bbox(mask)
  box = (max(top - border_y, 0), max(left - border_x, 0),
         min(bottom + border_y, image.shape[0]), min(right + border_x, image.shape[1]))
  return crop_box(image, mask, box, size, return_mask)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """Binary uint8 mask at ``shape`` (nearest neighbour keeps it binary)."""
  if mask.shape != tuple(shape):
    mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
  return (mask > 0).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class SampledPatches:
  """Patches drawn under overlap rules, at the image's own resolution.

  Attributes:
    images: (n, size, size[, C]) image crops, n ≤ the count asked for.
    masks: (n, size, size) uint8 0/1 lesion-mask crops (same boxes).
    boxes: (n, 4) int (top, left, bottom, right) of each patch.
    reason: '' when every patch asked for was found, else why there are fewer.
  """
  images: np.ndarray
  masks: np.ndarray
  boxes: np.ndarray
  reason: str = ''


def _window_sums(integral: np.ndarray, tops, lefts, size: int) -> np.ndarray:
  """Pixel counts of size×size windows at (tops, lefts), from a cv2.integral table."""
  bottoms, rights = tops + size, lefts + size
  return (integral[bottoms, rights] - integral[tops, rights] - integral[bottoms, lefts]
          + integral[tops, lefts])


def _overlap_fractions(mask: np.ndarray):
  """For a binary mask: f(tops, lefts, size) → (fraction of each patch that is
  mask, fraction of the mask inside each patch), in O(1) per patch."""
  integral, area = cv2.integral(mask), float(mask.sum())

  def fractions(tops, lefts, size):
    inside = _window_sums(integral, tops, lefts, size).astype(np.float64)
    return inside / (size * size), (inside / area if area else np.zeros_like(inside))
  return fractions


def lesion_patch_ok(lesion_mask: np.ndarray, box: tuple[int, int, int, int], *,
                    min_overlap: float = 0.9) -> bool:
  """TFDS's lesion-patch rule for the square ``box``.

  True when the lesion covers more than ``min_overlap`` of the patch OR more
  than ``min_overlap`` of the lesion lies inside the patch (small lesions
  can never fill 90% of a patch; big ones never fit in one).
  """
  top, left, bottom, right = box
  if bottom - top != right - left:
    raise ValueError(f'lesion_patch_ok needs a square box; got {box}.')
  fractions = _overlap_fractions((lesion_mask > 0).astype(np.uint8))
  of_patch, of_lesion = fractions(np.array([top]), np.array([left]), bottom - top)
  return bool(of_patch[0] > min_overlap or of_lesion[0] > min_overlap)


def _draw(rng, low: tuple[int, int], high: tuple[int, int], tries: int):
  tops = rng.integers(low[0], high[0] + 1, tries)
  lefts = rng.integers(low[1], high[1] + 1, tries)
  return tops, lefts


def _empty(image, size, reason):
  return SampledPatches(np.zeros((0, size, size) + image.shape[2:], image.dtype),
                        np.zeros((0, size, size), np.uint8), np.zeros((0, 4), np.int64), reason)


def _collect(image, mask, size, count, rng, low, high, tries_per_level, accept):
  """Draws ``tries_per_level`` candidate corners per relaxation level.

  ``accept(tops, lefts, level)`` returns which candidates pass at that level,
  or None once the thresholds are relaxed past giving up. Returns at most
  ``count`` distinct patches (the caller sets the reason when fewer).
  """
  chosen, level = {}, 0
  while len(chosen) < count:
    tops, lefts = _draw(rng, low, high, tries_per_level)
    ok = accept(tops, lefts, level)
    if ok is None:
      break
    for top, left in zip(tops[ok].tolist(), lefts[ok].tolist()):
      chosen.setdefault((top, left), None)  # a dict keeps draw order, drops repeats
      if len(chosen) == count:
        break
    level += 1
  if not chosen:
    return _empty(image, size, '')
  boxes = np.array([(t, l, t + size, l + size) for t, l in chosen], np.int64)
  return SampledPatches(np.stack([crop_padded(image, box) for box in boxes]),
                        np.stack([crop_padded(mask, box) for box in boxes]), boxes)


def _too_small(image, size):
  if image.shape[0] < size or image.shape[1] < size:
    return (f'image of {image.shape[0]}x{image.shape[1]} px is smaller than the '
            f'{size}x{size} patch; resize it first or use smaller patches')
  return ''


def lesion_patches(image: np.ndarray, lesion_mask: np.ndarray, *, size: int, count: int,
                   rng: np.random.Generator, min_overlap: float = 0.9,
                   tries_per_level: int = 100) -> SampledPatches:
  """Random size×size patches of one lesion, by TFDS's positive-patch rule.

  Candidates are uniform among the in-image patches touching the lesion's
  bounding box and kept when ``lesion_patch_ok``; the threshold relaxes as the
  module's schedule says. An empty mask is a ValueError; running out of
  chances gives fewer patches and a ``reason``.
  """
  mask = resize_mask(lesion_mask, image.shape[:2])
  top, left, bottom, right = mask_bbox(mask)
  if reason := _too_small(image, size):
    return _empty(image, size, reason)
  low = (max(0, top - size + 1), max(0, left - size + 1))
  high = (min(image.shape[0] - size, bottom - 1), min(image.shape[1] - size, right - 1))
  fractions = _overlap_fractions(mask)

  def accept(tops, lefts, level):
    threshold = min_overlap * RELAX_MIN ** level
    if threshold <= GIVE_UP_MIN:
      return None
    of_patch, of_lesion = fractions(tops, lefts, size)
    return (of_patch > threshold) | (of_lesion > threshold)

  sample = _collect(image, mask, size, count, rng, low, high, tries_per_level, accept)
  if len(sample.boxes) == count:
    return sample
  return dataclasses.replace(sample, reason=(
      f'found {len(sample.boxes)} of {count} lesion patches of {size} px: none more even '
      f'with the lesion overlap relaxed from {min_overlap} to the {GIVE_UP_MIN} floor'))


def _lesion_list(lesion_mask, shape) -> list[np.ndarray]:
  """None, one (H, W) mask or a stack (N, H, W) of per-lesion masks → binary masks."""
  if lesion_mask is None:
    return []
  stack = lesion_mask[None] if lesion_mask.ndim == 2 else lesion_mask
  return [resize_mask(part, shape) for part in stack]


def background_patches(image: np.ndarray, lesion_mask: np.ndarray | None,
                       breast_mask: np.ndarray | None, *, size: int, count: int,
                       rng: np.random.Generator, min_breast: float = 0.75,
                       max_lesion_overlap: float = 0.35,
                       tries_per_level: int = 100) -> SampledPatches:
  """Random size×size background patches, by TFDS's negative-patch rule.

  A patch is kept when at least ``min_breast`` of it is breast and, for every
  lesion, at most ``max_lesion_overlap`` of the patch is lesion and at most
  ``max_lesion_overlap`` of the lesion is in the patch. ``lesion_mask`` is
  None (no lesion), one (H, W) mask, or (N, H, W) with one mask per lesion;
  ``breast_mask`` None computes ``breast_mask.breast_region(image)``.
  Thresholds relax as the module's schedule says; running out of chances
  gives fewer patches and a ``reason``. ``masks`` are the lesion crops.
  """
  if reason := _too_small(image, size):
    return _empty(image, size, reason)
  lesions = _lesion_list(lesion_mask, image.shape[:2])
  breast = (breast_lib.breast_region(image) if breast_mask is None
            else resize_mask(breast_mask, image.shape[:2]))
  breast_fraction = _overlap_fractions(breast)
  lesion_fractions = [_overlap_fractions(lesion) for lesion in lesions]

  def accept(tops, lefts, level):
    breast_min = min_breast * RELAX_MIN ** level
    lesion_max = max_lesion_overlap * RELAX_MAX ** level
    if breast_min <= GIVE_UP_MIN or lesion_max >= GIVE_UP_MAX:
      return None
    ok = breast_fraction(tops, lefts, size)[0] >= breast_min
    for fractions in lesion_fractions:
      of_patch, of_lesion = fractions(tops, lefts, size)
      ok &= (of_patch <= lesion_max) & (of_lesion <= lesion_max)
    return ok

  union = np.maximum.reduce(lesions) if lesions else np.zeros(image.shape[:2], np.uint8)
  high = (image.shape[0] - size, image.shape[1] - size)
  sample = _collect(image, union, size, count, rng, (0, 0), high, tries_per_level, accept)
  if len(sample.boxes) == count:
    return sample
  return dataclasses.replace(sample, reason=(
      f'found {len(sample.boxes)} of {count} background patches of {size} px: none more '
      f'even with the breast fraction relaxed from {min_breast} towards {GIVE_UP_MIN} and '
      f'the lesion overlap from {max_lesion_overlap} towards {GIVE_UP_MAX}'))
