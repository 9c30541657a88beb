"""Builds ROI patch arrays from records, in parallel, cached on disk.

The cache key covers the preprocessing config, the patch geometry and every
input file (path, size, modification time), so any change rebuilds it and an
unchanged second run only reads one ``.npy`` file.
"""

from concurrent import futures
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import tempfile

import cv2
import numpy as np

from mammojax.data import image_io, patches, preprocess, records as records_lib


CROP_MODES = ('auto', 'roi', 'whole')
# A mask whose aspect ratio differs more than this from its image's belongs to
# another image (a known CBIS-DDSM quirk), so it is not stretched to fit.
MAX_ASPECT_MISMATCH = 0.02


@dataclasses.dataclass(frozen=True)
class PatchSet:
  """Model-ready patches (N, S, S, 1) float32, their lesion masks (N, S, S, 1)
  uint8 (zeros where no lesion is known), and the records they came from."""
  images: np.ndarray
  masks: np.ndarray
  records: list[dict]
  skipped: list[dict]


def _file_signature(path: str) -> list:
  try:
    stat = os.stat(path)
    return [path, stat.st_size, stat.st_mtime_ns]
  except OSError:
    return [path, None, None]


def resolve_crop(crop: str, records: list[dict]) -> str:
  """'auto' → 'roi' when any record locates a lesion, else 'whole'."""
  if crop not in CROP_MODES:
    raise ValueError(f'Unknown data.crop {crop!r}; valid choices: {CROP_MODES}.')
  if crop != 'auto':
    return crop
  return 'roi' if any(records_lib.has_roi(r) for r in records) else 'whole'


def cache_key(records, preprocess_config, *, size: int, margin: float, crop: str) -> str:
  inputs = [[r['id'], r['label'], _file_signature(r['image_path']),
             [_file_signature(p) for p in r['mask_paths']], r['rois'],
             r.get('laterality', '')] for r in records]
  return preprocess.fingerprint({'preprocess': preprocess_config.to_dict(), 'size': size,
                                 'margin': margin, 'crop': crop, 'inputs': inputs})


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


def _resize(image: np.ndarray, size: int, interpolation) -> np.ndarray:
  return cv2.resize(image, (size, size), interpolation=interpolation)


def _example(prepared, record, original_shape, config, size, margin, crop):
  """(patch, mask patch) of one record; ValueError with the reason to skip it."""
  if crop == 'roi' and not records_lib.has_roi(record):
    raise ValueError('no lesion mask or ROI to crop (use data.crop=whole for whole images)')
  image, mask = prepared.image, lesion_mask(record, original_shape, prepared)
  if crop == 'roi':
    box = patches.square_box(patches.mask_bbox(mask), margin)
    patch, mask_patch = patches.crop_padded(image, box), patches.crop_padded(mask, box)
  else:
    patch, mask_patch = image, mask
  shrink = patch.shape[0] > size
  patch = _resize(patch, size, cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
  patch = preprocess.normalize(patch, config)
  if not np.isfinite(patch).all():
    raise ValueError('preprocessing produced NaN or Inf values')
  return patch, _resize(mask_patch, size, cv2.INTER_NEAREST)


def _image_patches(image_path, image_records, config, size, margin, crop):
  """Patches of every record of one image: [(record_id, (patch, mask) | reason)]."""
  try:
    raw = image_io.load_grayscale(image_path)
    prepared = preprocess.prepare_full_image(raw, config,
                                             laterality=image_records[0].get('laterality'))
  except ValueError as error:
    return [(r['id'], str(error)) for r in image_records]
  results = []
  for record in image_records:
    try:
      results.append((record['id'], _example(prepared, record, raw.shape, config, size, margin,
                                             crop)))
    except ValueError as error:
      results.append((record['id'], f'{error} (masks: {record["mask_paths"]})'))
  return results


def _build(records, config, size, margin, crop, num_workers):
  by_image = {}
  for record in records:
    by_image.setdefault(record['image_path'], []).append(record)
  with futures.ThreadPoolExecutor(num_workers) as pool:  # cv2 releases the GIL
    jobs = [pool.submit(_image_patches, path, group, config, size, margin, crop)
            for path, group in by_image.items()]
    outcome = dict(item for job in jobs for item in job.result())
  kept = [r for r in records if not isinstance(outcome[r['id']], str)]
  skipped = [{'id': r['id'], 'file': r['image_path'], 'reason': outcome[r['id']]}
             for r in records if isinstance(outcome[r['id']], str)]
  if not kept:
    empty = np.zeros((0, size, size, 1))
    return empty.astype(np.float32), empty.astype(np.uint8), kept, skipped
  images = np.stack([outcome[r['id']][0] for r in kept])[..., None].astype(np.float32)
  masks = np.stack([outcome[r['id']][1] for r in kept])[..., None].astype(np.uint8)
  return images, masks, kept, skipped


def load_or_build_patches(records, config: preprocess.PreprocessConfig, *, size: int,
                          margin: float, cache_dir: str | os.PathLike, crop: str = 'auto',
                          num_workers: int | None = None) -> PatchSet:
  """Patches for ``records``, read from the cache or built and cached."""
  crop = resolve_crop(crop, records)
  key = cache_key(records, config, size=size, margin=margin, crop=crop)
  folder = pathlib.Path(cache_dir) / f'patches-{key}'
  by_id = {r['id']: r for r in records}
  if (folder / 'index.json').exists():
    index = json.loads((folder / 'index.json').read_text())
    images = np.load(folder / 'images.npy', allow_pickle=False)
    masks = np.load(folder / 'masks.npy', allow_pickle=False)
    logging.info('Read %d cached patches from %s', len(images), folder)
    return PatchSet(images, masks, [by_id[i] for i in index['kept']], index['skipped'])
  images, masks, kept, skipped = _build(records, config, size, margin, crop,
                                        num_workers or os.cpu_count())
  folder.parent.mkdir(parents=True, exist_ok=True)
  scratch = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix='.building-'))
  np.save(scratch / 'images.npy', images, allow_pickle=False)
  np.save(scratch / 'masks.npy', masks, allow_pickle=False)
  (scratch / 'index.json').write_text(json.dumps(
      {'kept': [r['id'] for r in kept], 'skipped': skipped}))
  try:
    os.replace(scratch, folder)  # atomic: a killed build never looks complete
  except OSError:  # another process finished the same build first
    shutil.rmtree(scratch, ignore_errors=True)
  logging.info('Built %d patches (%d skipped) into %s', len(images), len(skipped), folder)
  return PatchSet(images, masks, kept, skipped)
