"""Augmentation preview: each example next to a few augmented versions of it.

A glance at this grid shows whether a strategy keeps lesions visible (the
notes warn that zoom and brightness can hide them) and whether masks follow
the image.
"""

import os

import numpy as np
from matplotlib.figure import Figure

from mammojax.data import augment

PANEL_INCHES = 2.0


def _display_image(image: np.ndarray, low: float, high: float) -> np.ndarray:
  """(H, W) or (H, W, 3) in [0, 1] for imshow, from the row's [low, high] (images may be z-scored).

  Every panel of a row shares its original's range, so brightness changes stay visible.
  """
  image = np.asarray(image, np.float64)
  image = np.clip((image - low) / (high - low), 0.0, 1.0) if high > low else image * 0.0
  return image[..., 0] if image.shape[-1] == 1 else image


def _draw_panel(axis, example: dict, title: str, value_range: tuple[float, float]) -> None:
  image = _display_image(example['image'], *value_range)
  axis.imshow(image, cmap='gray' if image.ndim == 2 else None, vmin=0.0, vmax=1.0)
  mask = example.get('mask')
  # contour() of a constant mask draws nothing and warns; skip empty or full masks.
  if mask is not None and 0.0 < float(np.mean(np.asarray(mask) > 0.5)) < 1.0:
    axis.contour(np.asarray(mask).reshape(mask.shape[:2]), levels=[0.5], colors='red',
                 linewidths=1.0)
  axis.set_title(title, fontsize=8)
  axis.set_axis_off()


def _check_examples(examples: list[dict]) -> None:
  if not examples:
    raise ValueError('save_augment_figure needs at least one example.')
  for index, example in enumerate(examples):
    if np.ndim(example.get('image')) != 3:
      raise ValueError(f'examples[{index}] needs an "image" shaped (H, W, C); got '
                       f'{np.shape(example.get("image"))}.')


def save_augment_figure(examples: list[dict], strategy: str, path: str | os.PathLike, *,
                        seed: int = 0, variants: int = 4) -> int:
  """Saves a grid (one row per example: original, then ``variants`` augmented versions).

  The mask contour is drawn in red where an example has a mask. Variant j of
  row i uses the Generator seeded by (seed, i, j), so the figure is
  reproducible. Returns the number of panels drawn.
  """
  augment.check_strategy(strategy)
  _check_examples(examples)
  if variants < 1:
    raise ValueError(f'variants={variants}; show at least one augmented version.')
  rows, cols = len(examples), 1 + variants
  figure = Figure(figsize=(PANEL_INCHES * cols, PANEL_INCHES * rows))
  axes = np.asarray(figure.subplots(rows, cols, squeeze=False))
  for row, example in enumerate(examples):
    value_range = (float(np.min(example['image'])), float(np.max(example['image'])))
    _draw_panel(axes[row, 0], example, 'original', value_range)
    for variant in range(variants):
      rng = np.random.default_rng([seed, row, variant])
      augmented = augment.augment_example(example, rng, strategy=strategy)
      _draw_panel(axes[row, 1 + variant], augmented, f'{strategy} #{variant + 1}', value_range)
  figure.tight_layout()
  directory = os.path.dirname(os.fspath(path))
  if directory:
    os.makedirs(directory, exist_ok=True)
  figure.savefig(path, dpi=100)
  return rows * cols
