"""Panels of image / true mask / predicted mask, saved during and after training."""

import os
import pathlib

from matplotlib import figure as mpl_figure
import numpy as np

PANEL_INCHES = 2.4
COLUMNS = ('image', 'true mask', 'predicted probability', 'predicted mask')


def save_panels(images: list[np.ndarray], masks: list[np.ndarray], probs: list[np.ndarray],
                path: str | os.PathLike, *, threshold: float) -> int:
  """One row per image: the image, its true mask, the probabilities, the thresholded mask.

  Returns the number of panels drawn (rows × 4).
  """
  if not images or not len(images) == len(masks) == len(probs):
    raise ValueError(f'Need as many images ({len(images)}), masks ({len(masks)}) and '
                     f'probabilities ({len(probs)}), at least one.')
  rows = len(images)
  fig = mpl_figure.Figure(figsize=(PANEL_INCHES * len(COLUMNS), PANEL_INCHES * rows))
  axes = fig.subplots(rows, len(COLUMNS), squeeze=False)
  for row, (image, mask, prob) in enumerate(zip(images, masks, probs)):
    panels = (image, mask, prob, prob >= threshold)
    for col, (title, panel) in enumerate(zip(COLUMNS, panels)):
      axis = axes[row, col]
      axis.imshow(np.asarray(panel, np.float32), cmap='gray',
                  vmin=None if col == 0 else 0.0, vmax=None if col == 0 else 1.0)
      axis.set_xticks([])
      axis.set_yticks([])
      if row == 0:
        axis.set_title(title if col != 3 else f'{title} (≥ {threshold:.2f})', fontsize=9)
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=80)
  return rows * len(COLUMNS)


def save_reconstructions(images: list[np.ndarray], outputs: list[np.ndarray],
                         path: str | os.PathLike) -> int:
  """One row per image: the input and the autoencoder's reconstruction, same grey scale."""
  if not images or len(images) != len(outputs):
    raise ValueError(f'Need as many images ({len(images)}) as reconstructions '
                     f'({len(outputs)}), at least one.')
  fig = mpl_figure.Figure(figsize=(PANEL_INCHES * 2, PANEL_INCHES * len(images)))
  axes = fig.subplots(len(images), 2, squeeze=False)
  for row, (image, output) in enumerate(zip(images, outputs)):
    low, high = float(np.min(image)), float(np.max(image))
    for col, (title, panel) in enumerate((('input', image), ('reconstruction', output))):
      axes[row, col].imshow(panel, cmap='gray', vmin=low, vmax=high)
      axes[row, col].set_xticks([])
      axes[row, col].set_yticks([])
      if row == 0:
        axes[row, col].set_title(title, fontsize=9)
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=80)
  return 2 * len(images)
