"""Masks predicted by a segmentation run, attached to records.

``data.roi_from``: at inference on new images there is no drawn ROI; the
notes crop by the mask a segmentation model predicts. Each record's mask
files and ROI shapes are replaced by the mask the run predicts for its image,
so the patch builder crops exactly as it does with drawn masks (an image
whose predicted mask is empty is skipped later with that reason).

``data.region_from``: the run predicts the breast (or thorax) region instead,
which replaces the threshold-based breast mask of preprocessing.

Masks are written once, as PNG, under the cache, keyed by the run's files
and the image file.
"""

import logging
import pathlib

import cv2
import numpy as np

from mammojax import segment
from mammojax.data import datasets, patch_cache, preprocess


def predict_image_masks(records: list[dict], run_dir: str, cache_root: pathlib.Path
                        ) -> dict[str, str]:
  """{image path: PNG of the mask ``run_dir`` predicts for it}, cached."""
  run_dir = pathlib.Path(run_dir).absolute()
  run_key = preprocess.fingerprint([patch_cache.file_signature(str(run_dir / name))
                                    for name in ('summary.json', 'config.json')])
  folder = cache_root / 'predicted_masks' / run_key
  folder.mkdir(parents=True, exist_ok=True)
  predictor, written, by_image = None, 0, {}
  for record in records:
    image_path = record['image_path']
    if image_path not in by_image:
      target = folder / f'{preprocess.fingerprint(patch_cache.file_signature(image_path))}.png'
      if not target.exists():
        predictor = predictor or segment.load_mask_predictor(run_dir)
        cv2.imwrite(str(target), _predict_or_empty(predictor, image_path) * 255)
        written += 1
      by_image[image_path] = str(target)
  logging.info('%d masks predicted by %s (%d read from the cache).', written, run_dir,
               len(by_image) - written)
  return by_image


def attach_predicted_masks(records: list[dict], run_dir: str, cache_root: pathlib.Path
                           ) -> list[dict]:
  """``data.roi_from``: records whose lesion masks are those ``run_dir`` predicts."""
  masks = predict_image_masks(records, run_dir, cache_root)
  return [{**r, 'mask_paths': [masks[r['image_path']]], 'rois': [], 'roi_from': str(run_dir)}
          for r in records]


def attach_region_masks(records: list[dict], run_dir: str, cache_root: pathlib.Path
                        ) -> list[dict]:
  """``data.region_from``: records whose breast/thorax region ``run_dir`` predicts."""
  masks = predict_image_masks(records, run_dir, cache_root)
  return [{**r, 'region_mask_path': masks[r['image_path']]} for r in records]


def attach_configured(data_config, records: list[dict]) -> list[dict]:
  """Records with the masks ``data.region_from`` and ``data.roi_from`` ask for."""
  cache_root = datasets.default_cache_root()
  if data_config.region_from:
    records = attach_region_masks(records, data_config.region_from, cache_root)
  if data_config.roi_from:
    records = attach_predicted_masks(records, data_config.roi_from, cache_root)
  return records


def _predict_or_empty(predictor, image_path: str) -> np.ndarray:
  """The predicted mask; an unreadable image gets an empty one (skipped, with a reason,
  when its patches are cut — by then image_io names the file)."""
  try:
    return predictor(image_path)
  except ValueError:
    return np.zeros((1, 1), np.uint8)
