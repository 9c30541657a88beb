"""Full-image inference by overlapping sliding windows, blended back.

A network trained on windows sees a whole mammogram through windows of its
input size. For an unpadded U-Net the output (``out_size``) is smaller than
the input (``window``): the image is reflect-padded by the difference, so
every output tile has its full input context, and output tiles are laid
over the image with ``stride`` and averaged where they overlap
(``windows.blend_windows``).
"""

from typing import Callable

import numpy as np

from mammojax.data import windows as windows_lib


def predict_full_image(predict_windows: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                       *, window: int, out_size: int, stride: int) -> np.ndarray:
  """Per-pixel predictions (H, W) of a 2-D ``image``.

  ``predict_windows`` maps (N, window, window, 1) inputs to (N, out_size,
  out_size, 1) outputs. With an identity-like model (the input's centre) the
  result is the image itself, exactly.
  """
  height, width = image.shape
  margin = (window - out_size) // 2
  if window - out_size != 2 * margin:
    raise ValueError(f'window {window} and output {out_size} differ by an odd number of pixels; '
                     'an unpadded U-Net always crops evenly — check the model sizes.')
  padded = np.pad(image, margin, mode='reflect') if margin else image
  out_boxes = windows_lib.window_boxes(height, width, size=out_size, stride=stride)
  # Output tile (top, left) reads the input window at the same corner of the
  # padded image, whose (top, left) is shifted by exactly ``margin``.
  in_boxes = [(top, left, top + window, left + window) for top, left, _, _ in out_boxes]
  inputs = windows_lib.extract_windows(padded, in_boxes)[..., None]
  outputs = predict_windows(inputs.astype(np.float32))
  return windows_lib.blend_windows(outputs[..., 0], out_boxes, (height, width))
