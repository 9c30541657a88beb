"""Fixed-size sliding windows for segmentation: cut, predict, blend back.

The notes train U-Nets on windows of 1024/512, 512/256, 448/224 and 384/192
pixels (size/stride). Windows cover the whole image: the last one on each axis
is flush with the border (so it overlaps its neighbour more), and an image
smaller than a window is zero-padded at the bottom/right.
"""

import numpy as np

from mammojax.data import patches


def _starts(length: int, size: int, stride: int) -> list[int]:
  """Window starts along one axis: every ``stride``, the last flush with the end."""
  if length <= size:
    return [0]
  starts = list(range(0, length - size + 1, stride))
  if starts[-1] != length - size:
    starts.append(length - size)
  return starts


def window_boxes(height: int, width: int, *, size: int,
                 stride: int) -> list[tuple[int, int, int, int]]:
  """(top, left, bottom, right) boxes of size×size windows covering the image.

  Row-major order. A box reaches past the image only when the image is
  smaller than ``size`` on that axis (``extract_windows`` pads with zeros).
  """
  if size < 1 or not 1 <= stride <= size:
    raise ValueError(f'Window size {size} and stride {stride} must satisfy 1 <= stride <= '
                     'size (a stride above the size would leave gaps).')
  if height < 1 or width < 1:
    raise ValueError(f'Cannot cut windows from an empty {height}x{width} image.')
  return [(top, left, top + size, left + size)
          for top in _starts(height, size, stride) for left in _starts(width, size, stride)]


def extract_windows(image: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
  """The windows as one array (n, size, size[, C]); outside the image is zero."""
  if not boxes:
    raise ValueError('No window boxes given; build them with window_boxes().')
  return np.stack([patches.crop_padded(image, box) for box in boxes])


def blend_windows(windows: np.ndarray, boxes: list[tuple[int, int, int, int]],
                  shape: tuple[int, int]) -> np.ndarray:
  """Averages overlapping window predictions back into one (H, W[, C]) float32 map.

  Padding beyond the image is dropped. Sums run in float64, so blending the
  windows of a float32 or integer image gives it back exactly.
  """
  if len(windows) != len(boxes):
    raise ValueError(f'{len(windows)} windows but {len(boxes)} boxes; pass the boxes the '
                     'windows were cut with.')
  height, width = shape[:2]
  total = np.zeros((height, width) + windows.shape[3:], np.float64)
  counts = np.zeros((height, width), np.int64)
  for window, (top, left, _, _) in zip(windows, boxes):
    rows, cols = min(window.shape[0], height - top), min(window.shape[1], width - left)
    total[top:top + rows, left:left + cols] += window[:rows, :cols]
    counts[top:top + rows, left:left + cols] += 1
  if not counts.all():
    raise ValueError('The windows do not cover the whole image; use window_boxes() with '
                     f'the image shape {shape[:2]}.')
  return (total / counts.reshape(counts.shape + (1,) * (total.ndim - 2))).astype(np.float32)
