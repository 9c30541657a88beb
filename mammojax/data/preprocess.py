"""Image preprocessing with a stored, hashable configuration.

The configuration is a frozen dataclass: it is written to the workdir and its
hash is part of the cache key, so a change of any step rebuilds the cache.
"""

import dataclasses
import hashlib
import json

import cv2
import numpy as np

NORMALIZATIONS = ('zscore', 'none')


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
  """What happens to every image before patches are cut from it.

  Attributes:
    clahe_clip_limit: CLAHE clip limit (cv2); 0 disables CLAHE.
    clahe_tile: CLAHE tile grid size (tiles per side).
    resize_height: resize full images to this height (keeping the aspect
      ratio) before anything else; 0 keeps the original size.
    normalize: 'zscore' for (x - mean) / std per patch, or 'none' for [0, 1].
  """
  clahe_clip_limit: float = 2.0
  clahe_tile: int = 8
  resize_height: int = 0
  normalize: str = 'zscore'

  def __post_init__(self):
    if self.normalize not in NORMALIZATIONS:
      raise ValueError(f'Unknown normalize {self.normalize!r}; valid choices: '
                       f'{NORMALIZATIONS}.')

  @classmethod
  def from_config(cls, config) -> 'PreprocessConfig':
    """Builds it from ``config.data.preprocess`` (a ConfigDict or dict)."""
    return cls(**dict(config))

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def fingerprint(self) -> str:
    return fingerprint(self.to_dict())


def fingerprint(value) -> str:
  """A short stable hash of any JSON-serialisable value."""
  text = json.dumps(value, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
  """Resizes keeping the aspect ratio (area interpolation when shrinking)."""
  if not height or image.shape[0] == height:
    return image
  width = max(1, round(image.shape[1] * height / image.shape[0]))
  interpolation = cv2.INTER_AREA if height < image.shape[0] else cv2.INTER_LINEAR
  return cv2.resize(image, (width, height), interpolation=interpolation)


def apply_clahe(image: np.ndarray, clip_limit: float, tile: int) -> np.ndarray:
  """Contrast-limited adaptive histogram equalisation (cv2, 8 or 16 bit)."""
  clahe = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile, tile))
  return clahe.apply(image)


def to_unit_range(image: np.ndarray) -> np.ndarray:
  """Integer image → float32 in [0, 1] by its dtype's range."""
  return image.astype(np.float32) / np.iinfo(image.dtype).max


def preprocess_full_image(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
  """Steps applied to a whole image before cropping: resize, CLAHE, [0, 1]."""
  image = resize_to_height(image, config.resize_height)
  if config.clahe_clip_limit > 0:
    image = apply_clahe(image, config.clahe_clip_limit, config.clahe_tile)
  return to_unit_range(image)


def normalize(patch: np.ndarray, config: PreprocessConfig) -> np.ndarray:
  """Per-patch normalisation; a constant patch becomes zeros, never NaN."""
  if config.normalize == 'none':
    return patch.astype(np.float32)
  std = float(patch.std())
  centred = patch.astype(np.float32) - patch.mean()
  return centred / std if std > 1e-6 else np.zeros_like(centred)
