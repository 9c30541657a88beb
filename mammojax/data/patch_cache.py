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

import numpy as np

from mammojax.data import image_io, patches, preprocess


@dataclasses.dataclass(frozen=True)
class PatchSet:
  """Model-ready patches (N, S, S, 1) float32 and the records they came from."""
  images: np.ndarray
  records: list[dict]
  skipped: list[dict]


def _file_signature(path: str) -> list:
  try:
    stat = os.stat(path)
    return [path, stat.st_size, stat.st_mtime_ns]
  except OSError:
    return [path, None, None]


def cache_key(records, preprocess_config, *, size: int, margin: float) -> str:
  inputs = [[r['id'], _file_signature(r['image_path']),
             [_file_signature(p) for p in r['mask_paths']]] for r in records]
  return preprocess.fingerprint({'preprocess': preprocess_config.to_dict(),
                                 'size': size, 'margin': margin, 'inputs': inputs})


def _image_patches(image_path, image_records, config, size, margin):
  """Patches for every abnormality of one image: [(record_id, patch | reason)]."""
  try:
    image = preprocess.preprocess_full_image(image_io.load_grayscale(image_path), config)
  except ValueError as error:
    return [(r['id'], str(error)) for r in image_records]
  results = []
  for record in image_records:
    try:
      mask = np.zeros(image.shape, np.uint8)
      for mask_path in record['mask_paths']:
        part = preprocess.resize_to_height(image_io.load_grayscale(mask_path),
                                           config.resize_height)
        mask = np.maximum(mask, patches.resize_mask(part, image.shape))
      patch = patches.roi_patch(image, mask, margin=margin, size=size)
      results.append((record['id'], preprocess.normalize(patch, config)))
    except ValueError as error:
      results.append((record['id'], f'{error} (masks: {record["mask_paths"]})'))
  return results


def _build(records, config, size, margin, num_workers):
  by_image = {}
  for record in records:
    by_image.setdefault(record['image_path'], []).append(record)
  with futures.ThreadPoolExecutor(num_workers) as pool:  # cv2 releases the GIL
    jobs = [pool.submit(_image_patches, path, group, config, size, margin)
            for path, group in by_image.items()]
    outcome = dict(item for job in jobs for item in job.result())
  kept = [r for r in records if not isinstance(outcome[r['id']], str)]
  skipped = [{'id': r['id'], 'file': r['image_path'], 'reason': outcome[r['id']]}
             for r in records if isinstance(outcome[r['id']], str)]
  images = np.stack([outcome[r['id']] for r in kept])[..., None] if kept else (
      np.zeros((0, size, size, 1), np.float32))
  return images.astype(np.float32), kept, skipped


def load_or_build_patches(records, config: preprocess.PreprocessConfig, *, size: int,
                          margin: float, cache_dir: str | os.PathLike,
                          num_workers: int | None = None) -> PatchSet:
  """ROI patches for ``records``, read from the cache or built and cached."""
  folder = pathlib.Path(cache_dir) / f'patches-{cache_key(records, config, size=size, margin=margin)}'
  by_id = {r['id']: r for r in records}
  if (folder / 'index.json').exists():
    index = json.loads((folder / 'index.json').read_text())
    images = np.load(folder / 'images.npy', allow_pickle=False)
    logging.info('Read %d cached patches from %s', len(images), folder)
    return PatchSet(images, [by_id[i] for i in index['kept']], index['skipped'])
  images, kept, skipped = _build(records, config, size, margin,
                                 num_workers or os.cpu_count())
  folder.parent.mkdir(parents=True, exist_ok=True)
  scratch = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix='.building-'))
  np.save(scratch / 'images.npy', images, allow_pickle=False)
  (scratch / 'index.json').write_text(json.dumps(
      {'kept': [r['id'] for r in kept], 'skipped': skipped}))
  try:
    os.replace(scratch, folder)  # atomic: a killed build never looks complete
  except OSError:  # another process finished the same build first
    shutil.rmtree(scratch, ignore_errors=True)
  logging.info('Built %d patches (%d skipped) into %s', len(images), len(skipped), folder)
  return PatchSet(images, kept, skipped)
