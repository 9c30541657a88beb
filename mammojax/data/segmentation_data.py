"""Full images with their lesion masks, and the window sampler that trains on them.

Segmentation works on whole images: one example per image, its mask the
union of every lesion the records of that image locate. Images are
preprocessed once (the same stored ``PreprocessConfig`` as classification,
z-scored per image) and cached. Training draws windows from them: with
probability ``foreground_fraction`` a window centred (with jitter) on a
random lesion pixel, else a uniformly placed one — lesions cover a few
percent of a mammogram, so uniform windows alone would teach "background".
Every draw derives from (seed, epoch, index), so resume stays exact.
"""

import dataclasses
import functools
import json
import logging
import os
import pathlib
import shutil
import tempfile

import grain
import numpy as np

from mammojax.data import augment, examples, image_io, patch_cache, patches, pipeline
from mammojax.data import preprocess


@dataclasses.dataclass(frozen=True)
class MaskedImages:
  """Preprocessed full images (H, W) float32, lesion masks (H, W) uint8, one record each."""
  images: list[np.ndarray]
  masks: list[np.ndarray]
  records: list[dict]
  skipped: list[dict]

  @functools.cached_property
  def foreground(self) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, columns) of each mask's lesion pixels, found once for the sampler."""
    return [np.nonzero(mask) for mask in self.masks]


def image_records(records: list[dict]) -> list[dict]:
  """One record per image, its mask files and ROI shapes the union of its lesions'."""
  by_image = {}
  for record in records:
    merged = by_image.setdefault(record['image_path'], {
        **record, 'id': record['image_id'], 'mask_paths': [], 'rois': [], 'lesion_ids': []})
    merged['mask_paths'] += [p for p in record['mask_paths'] if p not in merged['mask_paths']]
    merged['rois'] += record['rois']
    merged['lesion_ids'].append(record['id'])
  return list(by_image.values())


def _load_one(record, config):
  """(image, mask) or the reason to skip the image."""
  try:
    raw = image_io.load_grayscale(record['image_path'])
    prepared = preprocess.prepare_full_image(raw, config, laterality=record.get('laterality'),
                                             region_mask=examples.region_mask_of(record))
    mask = examples.lesion_mask(record, raw.shape, prepared)
  except ValueError as error:
    return str(error)
  image = preprocess.normalize(prepared.image, config)
  return image.astype(np.float32), mask


def _save(folder: pathlib.Path, masked: MaskedImages) -> None:
  folder.parent.mkdir(parents=True, exist_ok=True)
  scratch = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix='.building-'))
  arrays = {f'image_{i}': image for i, image in enumerate(masked.images)}
  arrays.update({f'mask_{i}': mask for i, mask in enumerate(masked.masks)})
  np.savez(scratch / 'arrays.npz', **arrays)
  (scratch / 'index.json').write_text(json.dumps({'records': masked.records,
                                                   'skipped': masked.skipped}))
  try:
    os.replace(scratch, folder)  # atomic: a killed build never looks complete
  except OSError:
    shutil.rmtree(scratch, ignore_errors=True)


def _load(folder: pathlib.Path) -> MaskedImages:
  index = json.loads((folder / 'index.json').read_text())
  with np.load(folder / 'arrays.npz', allow_pickle=False) as arrays:
    count = len(index['records'])
    return MaskedImages([arrays[f'image_{i}'] for i in range(count)],
                        [arrays[f'mask_{i}'] for i in range(count)],
                        index['records'], index['skipped'])


def load_or_build_masked_images(records: list[dict], config: preprocess.PreprocessConfig, *,
                                cache_dir: str | os.PathLike) -> MaskedImages:
  """Every image of ``records`` with its lesion mask, from the cache or built."""
  merged = image_records(records)
  key = preprocess.fingerprint({
      'preprocess': config.to_dict(), 'kind': 'masked_images',
      'inputs': [[r, patch_cache.file_signature(r['image_path']),
                  [patch_cache.file_signature(p) for p in r['mask_paths']]] for r in merged]})
  folder = pathlib.Path(cache_dir) / f'masked-{key}'
  if (folder / 'index.json').exists():
    return _load(folder)
  images, masks, kept, skipped = [], [], [], []
  for record in merged:
    result = _load_one(record, config)
    if isinstance(result, str):
      skipped.append({'id': record['id'], 'file': record['image_path'], 'reason': result})
      continue
    images.append(result[0])
    masks.append(result[1])
    kept.append(record)
  masked = MaskedImages(images, masks, kept, skipped)
  _save(folder, masked)
  logging.info('Built %d masked images (%d skipped) into %s', len(kept), len(skipped), folder)
  return masked


def sample_window(masked: MaskedImages, index: int, rng: np.random.Generator, *, window: int,
                  foreground_fraction: float) -> dict:
  """One training window of image ``index % len``: {'image', 'mask'} (window, window, 1)."""
  image_index = index % len(masked.images)
  image, mask = masked.images[image_index], masked.masks[image_index]
  height, width = image.shape
  ys, xs = masked.foreground[image_index]
  if rng.random() < foreground_fraction and len(ys):
    pick = rng.integers(len(ys))
    jitter = rng.integers(-window // 4, window // 4 + 1, size=2)
    top, left = ys[pick] - window // 2 + jitter[0], xs[pick] - window // 2 + jitter[1]
  else:
    top = rng.integers(0, max(height - window, 0) + 1)
    left = rng.integers(0, max(width - window, 0) + 1)
  # Windows near the border are clamped inside the image where it is large enough.
  top = int(np.clip(top, min(0, height - window), max(height - window, 0)))
  left = int(np.clip(left, min(0, width - window), max(width - window, 0)))
  box = (top, left, top + window, left + window)
  return {'image': patches.crop_padded(image, box)[..., None],
          'mask': patches.crop_padded(mask, box)[..., None].astype(np.float32)}


def _window_example(masked, window, foreground_fraction, strategy, index, rng):
  example = sample_window(masked, index, rng, window=window,
                          foreground_fraction=foreground_fraction)
  example = augment.augment_example(example, rng, strategy=strategy)
  return {**example, 'weight': np.float32(1.0)}


def window_batches(masked: MaskedImages, *, window: int, windows_per_image: int,
                   foreground_fraction: float, augmentation: str, global_batch_size: int,
                   seed: int, epoch: int, process_index: int = 0, process_count: int = 1
                   ) -> grain.MapDataset:
  """This process's batches of one epoch of random windows (full global batches)."""
  total = len(masked.images) * windows_per_image
  num_batches = total // global_batch_size
  if num_batches == 0:
    raise ValueError(f'{total} windows per epoch are fewer than data.batch_size='
                     f'{global_batch_size}; raise data.windows_per_image or lower the batch.')
  dataset = grain.MapDataset.range(total).shuffle(seed=pipeline.epoch_seed(seed, epoch))
  dataset = dataset[:num_batches * global_batch_size].random_map(
      lambda index, rng: _window_example(masked, window, foreground_fraction, augmentation,
                                         index, rng),
      seed=pipeline.epoch_seed(seed, epoch, stream=1))
  dataset = pipeline.process_share(dataset, global_batch_size, process_index, process_count)
  return dataset.batch(global_batch_size // process_count, drop_remainder=True)

