"""``data.roi_from``: classify lesions cropped by a segmentation run's predicted masks.

At inference on new images there is no drawn ROI; the notes crop by the mask
a segmentation model predicts. Each record's mask files and ROI shapes are
replaced by the mask the run predicts for its image (written once, as PNG,
under the cache, keyed by the run's checkpoint and the image file), so the
patch builder crops exactly as it does with drawn masks. An image whose
predicted mask is empty is skipped later with that reason.
"""

import logging
import os
import pathlib

import cv2
import numpy as np

from mammojax import segment
from mammojax.data import preprocess


def _signature(path: pathlib.Path) -> list:
  stat = os.stat(path)
  return [str(path), stat.st_size, stat.st_mtime_ns]


def attach_predicted_masks(records: list[dict], run_dir: str, cache_root: pathlib.Path
                           ) -> list[dict]:
  """Records whose ``mask_paths`` are the masks ``run_dir`` predicts for their images."""
  run_dir = pathlib.Path(run_dir).absolute()
  run_key = preprocess.fingerprint([_signature(run_dir / 'summary.json'),
                                    _signature(run_dir / 'config.json')])
  folder = cache_root / 'predicted_masks' / run_key
  folder.mkdir(parents=True, exist_ok=True)
  predictor, written, by_image = None, 0, {}
  for record in records:
    image_path = record['image_path']
    if image_path not in by_image:
      target = folder / f'{preprocess.fingerprint(_signature(pathlib.Path(image_path)))}.png'
      if not target.exists():
        predictor = predictor or segment.load_mask_predictor(run_dir)
        mask = _predict_or_empty(predictor, image_path)
        cv2.imwrite(str(target), mask * 255)
        written += 1
      by_image[image_path] = str(target)
  logging.info('data.roi_from: %d masks predicted by %s (%d read from the cache).', written,
               run_dir, len(by_image) - written)
  return [{**r, 'mask_paths': [by_image[r['image_path']]], 'rois': [],
           'roi_from': str(run_dir)} for r in records]


def _predict_or_empty(predictor, image_path: str) -> np.ndarray:
  """The predicted mask; an unreadable image gets an empty one (skipped, with a reason,
  when its patches are cut — by then image_io names the file)."""
  try:
    return predictor(image_path)
  except ValueError:
    return np.zeros((1, 1), np.uint8)
