"""Reading image files (PNG, JPEG, PGM, TIFF, BMP and DICOM) as arrays.

Every failure is a ValueError that names the file and says what to do, so a
reader can skip the record with that reason or stop the run with it.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

DICOM_SUFFIXES = ('.dcm', '.dicom')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.pgm', '.tif', '.tiff', '.bmp') + DICOM_SUFFIXES


def is_dicom(path: str | os.PathLike) -> bool:
  """DICOM by suffix, or by the 'DICM' magic at byte 128 (TCIA files have no suffix rule)."""
  if os.fspath(path).lower().endswith(DICOM_SUFFIXES):
    return True
  try:
    with open(path, 'rb') as handle:
      handle.seek(128)
      return handle.read(4) == b'DICM'
  except OSError:
    return False


def load_dicom(path: str | os.PathLike) -> np.ndarray:
  """A DICOM image as 2-D uint16, white = dense tissue.

  MONOCHROME1 images (white = 0) are inverted, and the stored bits are
  stretched to the full 16-bit range so that a 12-bit mammogram and a 16-bit
  PNG conversion of it give the same [0, 1] image.
  """
  import pydicom  # pylint: disable=import-outside-toplevel  (only DICOM users pay for it)
  try:
    dataset = pydicom.dcmread(os.fspath(path))
    pixels = dataset.pixel_array
  except Exception as error:  # pydicom raises many types for one cause: a bad file
    raise ValueError(f'Cannot read DICOM {path}: {error}. Check the file is complete; '
                     'compressed transfer syntaxes need pylibjpeg or gdcm installed.') from None
  if pixels.ndim != 2:
    raise ValueError(f'DICOM {path} holds an array of shape {pixels.shape}; expected one '
                     '2-D grayscale frame.')
  pixels = pixels.astype(np.int64)
  pixels -= min(int(pixels.min()), 0)  # signed data: shift to non-negative
  bits = int(getattr(dataset, 'BitsStored', 16) or 16)
  top = (1 << bits) - 1
  if getattr(dataset, 'PhotometricInterpretation', '') == 'MONOCHROME1':
    pixels = top - np.minimum(pixels, top)
  return (np.minimum(pixels, top) * (65535 / top)).round().astype(np.uint16)


def load_grayscale(path: str | os.PathLike) -> np.ndarray:
  """Reads an image file as a 2-D uint8 or uint16 array.

  Colour images are converted to grayscale. Raises ValueError naming the file
  when it is missing, truncated or not an image.
  """
  image = load_image(path, channels=1)
  return image[..., 0]


def load_image(path: str | os.PathLike, *, channels: int = 1) -> np.ndarray:
  """Reads an image as (H, W, channels) uint8/uint16; channels 1 (gray) or 3 (RGB)."""
  if channels not in (1, 3):
    raise ValueError(f'channels must be 1 or 3, got {channels}.')
  if not os.path.isfile(path):
    raise ValueError(f'Image file not found: {path}.')
  if is_dicom(path):
    image = load_dicom(path)
  else:
    image = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if image is None:
      raise ValueError(f'Cannot read image {path}: the file is truncated or not an image '
                       'format OpenCV reads (PNG, JPEG, PGM, TIFF, BMP) or DICOM.')
  if image.dtype not in (np.uint8, np.uint16):
    raise ValueError(f'Image {path} has dtype {image.dtype}; convert it to 8- or '
                     '16-bit integers.')
  if image.ndim == 3 and image.shape[2] == 4:
    image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
  if channels == 1 and image.ndim == 3:
    image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
  elif channels == 3:
    image = (cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3
             else np.repeat(image[..., None], 3, axis=-1))
  return image if image.ndim == 3 else image[..., None]


def load_mask(path: str | os.PathLike) -> np.ndarray:
  """A binary uint8 mask (1 = region) from any image file."""
  return (load_grayscale(path) > 0).astype(np.uint8)
