"""The training examples of one image: lesion crops, whole images, background patches.

An image is read and preprocessed once; then each of its records gives one
example (or ``crops_per_lesion`` shifted crops of its lesion), and the image
may add background patches (breast tissue away from every lesion, by the
TFDS ``curated_breast_imaging_ddsm`` rules in ``patches.background_patches``).
Each example is (record, patch (S, S) float32, lesion mask patch (S, S) uint8).
"""

import dataclasses
import zlib

import cv2
import numpy as np

from mammojax.data import image_io, patches, preprocess, records as records_lib

# A mask whose aspect ratio differs more than this from its image's belongs to
# another image (a known CBIS-DDSM quirk), so it is not stretched to fit.
MAX_ASPECT_MISMATCH = 0.02
BACKGROUND_CLASS = 'background'


@dataclasses.dataclass(frozen=True)
class PatchSpec:
  """How examples are cut: part of the patch cache key.

  Attributes:
    size: side of every patch after resizing.
    margin: ROI crops are the lesion's bounding box × margin, squared.
    crop: 'roi' (lesion crops) or 'whole' (the whole image, resized).
    crops_per_lesion: shifted crops per lesion (1 = the centred crop only).
    min_overlap: IoU of every shifted crop with the centred one.
    background_per_image: background patches drawn per image (0 = none).
    background_label: the label of background patches.
    seed: drives the crop shifts and background positions.
  """
  size: int
  margin: float
  crop: str
  crops_per_lesion: int = 1
  min_overlap: float = 0.9
  background_per_image: int = 0
  background_label: int = -1
  seed: int = 0


def lesion_mask(record: dict, original_shape: tuple[int, int],
                prepared: preprocess.PreparedImage) -> np.ndarray:
  """The union of a record's mask files and ROI shapes, in the prepared image's
  geometry (resized and flipped like it), uint8 0/1."""
  mask = np.zeros(prepared.image.shape[:2], np.uint8)
  for mask_path in record['mask_paths']:
    part = image_io.load_mask(mask_path)
    expected, found = original_shape[0] / original_shape[1], part.shape[0] / part.shape[1]
    if abs(found - expected) > MAX_ASPECT_MISMATCH * expected:
      raise ValueError(f'mask {mask_path} is {part.shape[1]}x{part.shape[0]} but its image is '
                       f'{original_shape[1]}x{original_shape[0]}: it belongs to another image')
    mask = np.maximum(mask, prepared.transform_mask(part))
  if record['rois']:
    drawn = records_lib.render_rois(record['rois'], original_shape)
    mask = np.maximum(mask, prepared.transform_mask(drawn))
  return mask


def region_mask_of(record: dict) -> np.ndarray | None:
  """The record's region mask (``region_mask_path``, e.g. a predicted breast), or None."""
  path = record.get('region_mask_path')
  return image_io.load_mask(path) if path else None


def finish_patch(patch: np.ndarray, mask: np.ndarray, config, size: int):
  """Resize to ``size``, normalise; ValueError if anything non-finite remains."""
  interpolation = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
  patch = preprocess.normalize(cv2.resize(patch, (size, size), interpolation=interpolation),
                               config)
  if not np.isfinite(patch).all():
    raise ValueError('preprocessing produced NaN or Inf values')
  return patch, cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)


def _record_examples(image, mask, record, config, spec, rng):
  """[(record, patch, mask)] of one record; ValueError with the reason to skip it."""
  if spec.crop == 'whole':
    return [(record, *finish_patch(image, mask, config, spec.size))]
  box = patches.square_box(patches.mask_bbox(mask), spec.margin)
  pairs = [(patches.crop_padded(image, box), patches.crop_padded(mask, box))]
  if spec.crops_per_lesion > 1:
    crops, masks = patches.roi_crops(image, mask, size=box[2] - box[0], margin=spec.margin,
                                     count=spec.crops_per_lesion - 1,
                                     min_overlap=spec.min_overlap, rng=rng, return_mask=True)
    pairs += list(zip(crops, masks))
  return [({**record, 'id': record['id'] if index == 0 else f'{record["id"]}#crop{index}'},
           *finish_patch(patch, patch_mask, config, spec.size))
          for index, (patch, patch_mask) in enumerate(pairs)]


def _background_examples(prepared, lesions, template, config, spec, rng):
  """Background patches of one image, the side of a typical lesion crop."""
  side = max(spec.size, min(prepared.image.shape[:2]) // 4)
  sampled = patches.background_patches(
      prepared.image, np.stack(lesions) if lesions else None, prepared.breast_mask,
      size=side, count=spec.background_per_image, rng=rng)
  record = {**template, 'class_name': BACKGROUND_CLASS, 'label': spec.background_label,
            'mask_paths': [], 'rois': []}
  examples = [({**record, 'id': f'{template["image_id"]}#background{index}'},
               *finish_patch(patch, np.zeros_like(patch, np.uint8), config, spec.size))
              for index, patch in enumerate(sampled.images)]
  return examples, sampled.reason


def image_examples(image_path: str, image_records: list[dict],
                   config: preprocess.PreprocessConfig, spec: PatchSpec
                   ) -> tuple[list[tuple], list[dict]]:
  """(examples, skipped) of one image and the records that share it."""
  try:
    raw = image_io.load_grayscale(image_path)
    prepared = preprocess.prepare_full_image(raw, config,
                                             laterality=image_records[0].get('laterality'),
                                             region_mask=region_mask_of(image_records[0]))
  except ValueError as error:
    return [], [_skip(r, str(error)) for r in image_records]
  rng = np.random.default_rng([spec.seed, zlib.crc32(image_path.encode())])
  examples, skipped, lesions = [], [], []
  for record in image_records:
    try:
      if spec.crop == 'roi' and not records_lib.has_roi(record):
        raise ValueError('no lesion mask or ROI to crop (use data.crop=whole for whole images)')
      mask = lesion_mask(record, raw.shape, prepared)
      examples += _record_examples(prepared.image, mask, record, config, spec, rng)
      lesions += [mask] if records_lib.has_roi(record) else []
    except ValueError as error:
      skipped.append(_skip(record, f'{error} (masks: {record["mask_paths"]})'))
  if spec.background_per_image and spec.crop == 'roi':
    background, reason = _background_examples(prepared, lesions, image_records[0], config,
                                              spec, rng)
    examples += background
    if reason:  # the image gave fewer than asked: say so, under a background id
      skipped.append({'id': f'{image_records[0]["image_id"]}#background', 'file': image_path,
                      'reason': f'fewer background patches than data.background_patches: '
                                f'{reason}'})
  return examples, skipped


def _skip(record: dict, reason: str) -> dict:
  return {'id': record['id'], 'file': record['image_path'], 'reason': reason}
