"""Telling CBIS-DDSM files apart by content: full image, ROI mask or cropped ROI.

The TCIA download numbers its files inconsistently (the mask is 1-1.dcm in
one folder and 1-2.dcm in the next), and some CSV rows swap the crop and mask
columns, so names are never trusted. Cheapest signal first: the DICOM
SeriesDescription when it tells files apart, then the header size (a mask has
the full image's size), then the pixels (a mask is binary, a crop is not).
"""

from __future__ import annotations

import os

import numpy as np

from mammojax.data import image_io

# Share of pixels allowed off {0, max} in a mask: lossy or resized conversions
# blur the outline, which is a tiny part of a full-size image.
MASK_OFF_VALUES_FRACTION = 0.01


def image_files(folder: str) -> list[str]:
  """Image files (DICOM, PNG, ...) anywhere under ``folder``, in a stable order."""
  found = []
  for parent, subfolders, names in os.walk(folder):
    subfolders[:] = sorted(name for name in subfolders if not name.startswith('.'))
    found += [os.path.join(parent, name) for name in sorted(names)
              if not name.startswith('.') and name.lower().endswith(image_io.IMAGE_SUFFIXES)]
  return found


def classify_roi_files(files: list[str],
                        full_shape: tuple[int, int] | None) -> dict[str, str]:
  """'mask' or 'crop' for each file of an abnormality folder, reading as little as possible."""
  described = {file: series_kind(dicom_header(file)) for file in files}
  kinds = list(described.values())
  # When mask and crop share one series, both say 'ROI mask images': the
  # description only counts when it tells every file apart.
  if set(kinds) <= {'mask', 'crop'} and len(set(kinds)) == len(kinds):
    return described
  return {file: content_kind(file, full_shape) for file in files}


def content_kind(path: str, full_shape: tuple[int, int] | None) -> str:
  """'mask' when the file has the full image's size (DICOM header) or is binary, else 'crop'.

  Raises ValueError naming the file when its pixels cannot be read.
  """
  if full_shape is not None and dicom_shape(path) == full_shape:
    return 'mask'
  # Pixels only now: the header was not enough (PNG, or a mask whose size
  # differs slightly from its image, which happens in the real download).
  pixels = image_io.load_grayscale(path)  # ValueError naming the file when unreadable
  off_values = np.count_nonzero((pixels != 0) & (pixels != pixels.max()))
  return 'mask' if off_values <= MASK_OFF_VALUES_FRACTION * pixels.size else 'crop'


def series_kind(header) -> str | None:
  """'full', 'mask' or 'crop' from a DICOM SeriesDescription, None when it does not say."""
  description = str(getattr(header, 'SeriesDescription', '') or '').lower()
  for word, kind in (('full', 'full'), ('mask', 'mask'), ('crop', 'crop')):
    if word in description:
      return kind
  return None


def dicom_shape(path: str) -> tuple[int, int] | None:
  """(rows, columns) from a DICOM header, None for other files."""
  header = dicom_header(path)
  rows, columns = getattr(header, 'Rows', None), getattr(header, 'Columns', None)
  return (int(rows), int(columns)) if rows and columns else None


def dicom_header(path: str):
  """The DICOM header without pixels (fast), or None for other or unreadable files."""
  if not image_io.is_dicom(path):
    return None
  import pydicom  # pylint: disable=import-outside-toplevel  (only DICOM users pay for it)
  try:
    return pydicom.dcmread(path, stop_before_pixels=True)
  except Exception:  # pylint: disable=broad-except  (pydicom raises many types for one cause)
    return None  # a broken file is reported by image_io when its pixels are read
