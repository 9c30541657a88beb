"""The record: what every data source produces, one plain dict per example.

Every reader (CBIS-DDSM, MIAS, INbreast, folder trees, CSV + masks, TFDS,
synthetic) returns ``(records, skipped)``: ``records`` is a list of dicts with
the keys below, ``skipped`` a list of ``{'file', 'id', 'reason'}`` dicts (plus
``'row'`` where a line number helps) for every input left out. Nothing is
dropped silently.

Required keys:
  id          unique across the run (readers prefix it with what makes it so)
  image_id    the image it belongs to (several lesions may share one image)
  image_path  absolute path of the full image (PNG, JPEG, PGM, TIFF, DICOM)
  class_name  the example's class as the dataset names it ('benign',
              'malignant', 'NORMAL', 'PNEUMONIA', ...); the run maps class
              names to integer labels with ``data.classes``
  patient_id  grouping key of the leakage-free splits
  source      the reader's name ('cbis_ddsm', 'mias', ...)
  split       'train', 'val' or 'test' when the dataset fixes it, '' otherwise
  mask_paths  binary mask files of this example's region(s) of interest (any
              size: masks are resized to the image with nearest neighbour)
  rois        ROI shapes in the image's own pixel coordinates (x to the right,
              y DOWN from the top-left corner), for datasets that give shapes
              rather than mask files: ``{'shape': 'circle', 'x', 'y',
              'radius'}`` or ``{'shape': 'polygon', 'points': [[x, y], ...]}``

A record with neither mask files nor ROI shapes is a whole-image example.

Optional keys: label (int; the run sets it from ``class_name``),
laterality ('LEFT'/'RIGHT', used to flip images to a canonical side), view,
region_mask_path (a mask of the breast or thorax, e.g. predicted by a
segmentation run: pixels outside it are set to 0);
per reader: pathology, abnormality_type, abnormality_id, crop_path and
fixed (repairs made to the row: TCIA paths, swapped columns) for CBIS-DDSM;
background_tissue, abnormality_class, severity, roi_missing (a lesion whose
position Info.txt does not give) for MIAS; birads, acr, image_size,
roi_names for INbreast; mask_missing and columns for CSV + masks; tfds_id
for TFDS.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

REQUIRED_KEYS = ('id', 'image_id', 'image_path', 'class_name', 'patient_id', 'source',
                 'split', 'mask_paths', 'rois')
SPLITS = ('train', 'val', 'test', '')


def check_record(record: dict) -> None:
  """Raises ValueError naming the record and the missing or bad key."""
  missing = [key for key in REQUIRED_KEYS if key not in record]
  if missing:
    raise ValueError(f'Record {record.get("id", record)!r} lacks keys {missing}; '
                     f'every reader must set {list(REQUIRED_KEYS)}.')
  if record['split'] not in SPLITS:
    raise ValueError(f'Record {record["id"]!r} has split {record["split"]!r}; valid: {SPLITS}.')


def has_roi(record: dict) -> bool:
  """True when the record locates a lesion (mask files or ROI shapes)."""
  return bool(record.get('mask_paths')) or bool(record.get('rois'))


def render_rois(rois: list[dict], shape: tuple[int, int]) -> np.ndarray:
  """A binary uint8 mask of ``shape`` (H, W) with every ROI shape filled."""
  mask = np.zeros(shape, np.uint8)
  for roi in rois:
    if roi['shape'] == 'circle':
      cv2.circle(mask, (round(roi['x']), round(roi['y'])), max(1, round(roi['radius'])), 1,
                 thickness=-1)
    elif roi['shape'] == 'polygon':
      points = np.round(np.asarray(roi['points'], np.float64)).astype(np.int32)
      cv2.fillPoly(mask, [points.reshape(-1, 1, 2)], 1)
    else:
      raise ValueError(f'Unknown ROI shape {roi["shape"]!r}; valid: circle, polygon.')
  return mask


def path_inside(root: str | os.PathLike, relative: str) -> str:
  """``root/relative`` normalised; ValueError if it leaves ``root``.

  Paths read from CSV, XML or TXT files are data: '..' or an absolute path
  must not reach files outside the dataset the user pointed us at.
  """
  root = os.path.abspath(root)
  path = os.path.normpath(os.path.join(root, relative.replace('\\', '/')))
  if os.path.commonpath([path, root]) != root:
    raise ValueError(f'path {relative!r} leaves the dataset root {root}')
  return path
