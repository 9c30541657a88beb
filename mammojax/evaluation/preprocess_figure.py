"""A figure of every preprocessing step on sample images (one row each)."""

import os
import pathlib

from matplotlib import figure as mpl_figure
import numpy as np

from mammojax.data import preprocess

PANEL_INCHES = 2.2


def save_preprocess_figure(images: list[np.ndarray], config: preprocess.PreprocessConfig,
                           path: str | os.PathLike,
                           lateralities: list[str | None] | None = None) -> int:
  """Saves a PNG grid: one row per image, one column per step of ``config``.

  Columns are ``preprocess.steps`` (titles = step names), each panel scaled
  to its own min–max so every step is visible. ``lateralities`` (one per
  image, or None) is passed to the flip step. Returns the number of panels
  (rows × columns).
  """
  if not images:
    raise ValueError('No sample images given for the preprocessing figure.')
  lateralities = lateralities or [None] * len(images)
  if len(lateralities) != len(images):
    raise ValueError(f'{len(lateralities)} lateralities for {len(images)} images; give one '
                     'per image (None where unknown).')
  rows = [preprocess.steps(image, config, laterality)
          for image, laterality in zip(images, lateralities)]
  cols = len(rows[0])
  # Figure, not pyplot: no global state, no display backend needed.
  fig = mpl_figure.Figure(figsize=(PANEL_INCHES * cols, PANEL_INCHES * len(rows)))
  axes = fig.subplots(len(rows), cols, squeeze=False)
  for row, named in enumerate(rows):
    for col, (name, array) in enumerate(named):
      axes[row, col].imshow(array, cmap='gray')
      axes[row, col].set_xticks([])
      axes[row, col].set_yticks([])
      if row == 0:
        axes[row, col].set_title(name)
    axes[row, 0].set_ylabel(f'sample {row + 1}')
  fig.tight_layout()
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(os.fspath(path), dpi=100, format='png')
  return len(rows) * cols
