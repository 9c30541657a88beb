"""Image preprocessing with a stored, hashable configuration.

The configuration is a frozen dataclass: it is written to the workdir and its
hash is part of the cache key, so a change of any step rebuilds the cache.
"""

import dataclasses
import hashlib
import json

import cv2
import numpy as np

from mammojax.data import breast_mask as breast_lib

NORMALIZATIONS = ('zscore', 'none', 'gcn')
CANONICAL_SIDES = ('', 'left', 'right')
# Below this a patch counts as constant: z-score gives zeros and GCN divides
# by this instead of ~0, so neither ever gives NaN or huge values.
EPSILON = 1e-6


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
  """What happens to every image before patches are cut from it.

  Attributes:
    clahe_clip_limit: CLAHE clip limit (cv2); 0 disables CLAHE.
    clahe_tile: CLAHE tile grid size (tiles per side).
    resize_height: resize full images to this height (keeping the aspect
      ratio) before anything else; 0 keeps the original size.
    normalize: 'zscore' for (x - mean) / std per patch, 'gcn' for global
      contrast normalisation per patch (see ``global_contrast_normalize``), or
      'none' for [0, 1].
    gcn_scale: GCN's scale s (the output's root mean square).
    gcn_lambda: GCN's regulariser lambda added to the variance (0 = none).
    breast_mask: zero everything outside the breast/thorax (labels, markers).
    mask_threshold: breast-mask threshold as a fraction of the image's
      intensity range; 0 uses Otsu's threshold.
    canonical_side: '' keeps images as they are; 'left' or 'right' mirrors
      them so the breast lies on that side (from the laterality when known).
  """
  clahe_clip_limit: float = 2.0
  clahe_tile: int = 8
  resize_height: int = 0
  normalize: str = 'zscore'
  gcn_scale: float = 1.0
  gcn_lambda: float = 0.0
  breast_mask: bool = False
  mask_threshold: float = 0.0
  canonical_side: str = ''

  def __post_init__(self):
    if self.normalize not in NORMALIZATIONS:
      raise ValueError(f'Unknown normalize {self.normalize!r}; valid choices: '
                       f'{NORMALIZATIONS}.')
    if self.canonical_side not in CANONICAL_SIDES:
      raise ValueError(f'Unknown canonical_side {self.canonical_side!r}; valid choices: '
                       f"{CANONICAL_SIDES} ('' = no flip).")
    if not 0 <= self.mask_threshold < 1:
      raise ValueError(f'mask_threshold {self.mask_threshold} must be in [0, 1); '
                       '0 uses Otsu.')
    if self.gcn_scale <= 0 or self.gcn_lambda < 0:
      raise ValueError(f'gcn_scale must be > 0 and gcn_lambda >= 0; got {self.gcn_scale} '
                       f'and {self.gcn_lambda}.')

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


@dataclasses.dataclass(frozen=True)
class PreparedImage:
  """A preprocessed full image and what was done to it.

  Attributes:
    image: float32 in [0, 1], after every step.
    flipped: True when the image was mirrored left–right.
    breast_mask: uint8 0/1 breast mask in the output geometry (after the
      flip), or None when breast masking is off.
  """
  image: np.ndarray
  flipped: bool = False
  breast_mask: np.ndarray | None = None

  def transform_mask(self, mask: np.ndarray) -> np.ndarray:
    """A lesion mask of the ORIGINAL image, moved to this image's geometry.

    Resized (nearest neighbour, so it stays binary) and flipped like the
    image; returns uint8 0/1 of ``image.shape``.
    """
    height, width = self.image.shape[:2]
    if mask.shape[:2] != (height, width):
      mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    mask = (mask > 0).astype(np.uint8)
    return cv2.flip(mask, 1) if self.flipped else mask


def _run_steps(image, config, laterality, record, region_mask=None):
  """THE order of the full-image steps; ``record(name, array)`` sees each one.

  resize → breast masking → flip to the canonical side → CLAHE → [0, 1].
  Masking comes before the flip so a marker never decides the breast's side,
  and before CLAHE so labels do not steal its histogram. A ``region_mask``
  (e.g. predicted by a segmentation run, ``data.region_from``) replaces the
  threshold-based breast region.
  """
  if config.resize_height:
    image = resize_to_height(image, config.resize_height)
    record('resize', image)
  mask = None
  if region_mask is not None:
    mask = cv2.resize((region_mask > 0).astype(np.uint8), (image.shape[1], image.shape[0]),
                      interpolation=cv2.INTER_NEAREST)
    image = breast_lib.apply_breast_mask(image, mask)
    record('region mask', image)
  elif config.breast_mask:
    mask = breast_lib.breast_region(image, threshold=config.mask_threshold)
    image = breast_lib.apply_breast_mask(image, mask)
    record('breast mask', image)
  flipped = False
  if config.canonical_side:
    image, flipped = breast_lib.flip_to_side(image, config.canonical_side, laterality)
    mask = cv2.flip(mask, 1) if flipped and mask is not None else mask
    record('flip', image)
  if config.clahe_clip_limit > 0:
    image = apply_clahe(image, config.clahe_clip_limit, config.clahe_tile)
    record('clahe', image)
  image = to_unit_range(image)
  record('unit range', image)
  return PreparedImage(image, flipped, mask)


def prepare_full_image(image: np.ndarray, config: PreprocessConfig, *,
                       laterality: str | None = None,
                       region_mask: np.ndarray | None = None) -> PreparedImage:
  """Every full-image step (see ``_run_steps`` for the order) and what it did.

  ``laterality`` ('LEFT'/'RIGHT', from the record) decides the breast's side
  for ``canonical_side``; without it the image decides. ``region_mask`` (any
  size; nonzero = keep) replaces the computed breast mask. Use the result's
  ``transform_mask`` so lesion masks follow the same geometry.
  """
  return _run_steps(image, config, laterality, lambda name, array: None, region_mask)


def preprocess_full_image(image: np.ndarray, config: PreprocessConfig, *,
                          laterality: str | None = None) -> np.ndarray:
  """The preprocessed full image only: float32 in [0, 1].

  With ``canonical_side`` set the image may be mirrored: callers with masks
  must use ``prepare_full_image`` and its ``transform_mask`` instead.
  """
  return prepare_full_image(image, config, laterality=laterality).image


def steps(image: np.ndarray, config: PreprocessConfig,
          laterality: str | None = None) -> list[tuple[str, np.ndarray]]:
  """Every intermediate image, named: for figures and for checking a config.

  'original', then each step that is on ('resize', 'breast mask', 'flip',
  'clahe'), 'unit range' (the output of ``preprocess_full_image``), and the
  normalisation ('zscore' or 'gcn') of the whole image when it is not 'none'.
  The list's length depends on the config only, never on the image.
  """
  named = [('original', image)]
  result = _run_steps(image, config, laterality, lambda name, array: named.append((name, array)))
  if config.normalize != 'none':
    named.append((config.normalize, normalize(result.image, config)))
  return named


def global_contrast_normalize(patch: np.ndarray, *, scale: float = 1.0,
                              lambda_: float = 0.0) -> np.ndarray:
  """Global contrast normalisation, as defined by Goodfellow, Bengio & Courville.

  Deep Learning (MIT Press, 2016), section 12.2.1.1, equation 12.3:
  X' = s (X - mean(X)) / max(epsilon, sqrt(lambda + mean((X - mean(X))^2))):
  the patch gets zero mean and root-mean-square ``scale``; lambda damps the
  gain on low-contrast patches and epsilon keeps a constant patch at zeros.
  """
  # float64: float32 round-off in the mean of a constant patch would otherwise
  # leave ~1e-8 residues that epsilon turns into visible noise.
  centred = patch.astype(np.float64) - patch.mean(dtype=np.float64)
  contrast = float(np.sqrt(lambda_ + np.mean(np.square(centred))))
  return (centred * (scale / max(EPSILON, contrast))).astype(np.float32)


def normalize(patch: np.ndarray, config: PreprocessConfig) -> np.ndarray:
  """Per-patch normalisation; a constant patch becomes zeros, never NaN."""
  if config.normalize == 'none':
    return patch.astype(np.float32)
  if config.normalize == 'gcn':
    return global_contrast_normalize(patch, scale=config.gcn_scale, lambda_=config.gcn_lambda)
  std = float(patch.std())
  centred = patch.astype(np.float32) - patch.mean()
  return centred / std if std > EPSILON else np.zeros_like(centred)
