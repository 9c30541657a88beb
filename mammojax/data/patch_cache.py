"""Builds patch arrays from records, in parallel over images, cached on disk.

The cache key covers the preprocessing config, the patch spec and every
input record and file (path, size, modification time), so any change
rebuilds it and an unchanged second run only reads two ``.npy`` files.
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

from mammojax.data import examples as examples_lib, preprocess, records as records_lib


CROP_MODES = ('auto', 'roi', 'whole')


@dataclasses.dataclass(frozen=True)
class PatchSet:
  """Model-ready patches (N, S, S, 1) float32, their lesion masks (N, S, S, 1)
  uint8 (zeros where no lesion is known), one record per patch, and the
  inputs left out with their reasons."""
  images: np.ndarray
  masks: np.ndarray
  records: list[dict]
  skipped: list[dict]


def file_signature(path: str) -> list:
  """[path, size, modification time]: what a cache key needs to notice a changed file."""
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


def cache_key(records, preprocess_config, spec: examples_lib.PatchSpec) -> str:
  """Covers the preprocessing, the patch spec and every input record and file."""
  inputs = [[r, file_signature(r['image_path']), [file_signature(p) for p in r['mask_paths']]]
            for r in records]
  return preprocess.fingerprint({'preprocess': preprocess_config.to_dict(),
                                 'spec': dataclasses.asdict(spec), 'inputs': inputs})


def _build(records, config, spec, num_workers):
  by_image = {}
  for record in records:
    by_image.setdefault(record['image_path'], []).append(record)
  with futures.ThreadPoolExecutor(num_workers) as pool:  # cv2 releases the GIL
    jobs = [pool.submit(examples_lib.image_examples, path, group, config, spec)
            for path, group in by_image.items()]
    results = [job.result() for job in jobs]
  found = [example for examples, _ in results for example in examples]
  skipped = [entry for _, entries in results for entry in entries]
  if not found:
    empty = np.zeros((0, spec.size, spec.size, 1))
    return empty.astype(np.float32), empty.astype(np.uint8), [], skipped
  images = np.stack([patch for _, patch, _ in found])[..., None].astype(np.float32)
  masks = np.stack([mask for _, _, mask in found])[..., None].astype(np.uint8)
  return images, masks, [record for record, _, _ in found], skipped


def load_or_build_patches(records, config: preprocess.PreprocessConfig, *, size: int,
                          margin: float, cache_dir: str | os.PathLike, crop: str = 'auto',
                          num_workers: int | None = None, **spec_fields) -> PatchSet:
  """Patches for ``records``, read from the cache or built and cached.

  ``spec_fields`` are the other ``examples.PatchSpec`` fields (crops per
  lesion, background patches, seed).
  """
  spec = examples_lib.PatchSpec(size=size, margin=margin, crop=resolve_crop(crop, records),
                                **spec_fields)
  folder = pathlib.Path(cache_dir) / f'patches-{cache_key(records, config, spec)}'
  if (folder / 'index.json').exists():
    index = json.loads((folder / 'index.json').read_text())
    images = np.load(folder / 'images.npy', allow_pickle=False)
    masks = np.load(folder / 'masks.npy', allow_pickle=False)
    logging.info('Read %d cached patches from %s', len(images), folder)
    return PatchSet(images, masks, index['records'], index['skipped'])
  images, masks, kept, skipped = _build(records, config, spec, num_workers or os.cpu_count())
  folder.parent.mkdir(parents=True, exist_ok=True)
  scratch = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix='.building-'))
  np.save(scratch / 'images.npy', images, allow_pickle=False)
  np.save(scratch / 'masks.npy', masks, allow_pickle=False)
  (scratch / 'index.json').write_text(json.dumps({'records': kept, 'skipped': skipped}))
  try:
    os.replace(scratch, folder)  # atomic: a killed build never looks complete
  except OSError:  # another process finished the same build first
    shutil.rmtree(scratch, ignore_errors=True)
  logging.info('Built %d patches (%d skipped) into %s', len(images), len(skipped), folder)
  return PatchSet(images, masks, kept, skipped)
