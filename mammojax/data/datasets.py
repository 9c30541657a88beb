"""From ``config.data`` to train/val/test patch sets and a data report."""

import collections
import dataclasses
import logging
import os
import pathlib

import numpy as np

from mammojax.data import patch_cache, preprocess, splits
from mammojax.data.sources import cbis_ddsm, synthetic

SOURCES = ('synthetic', 'cbis_ddsm')
CLASS_NAMES = ('benign', 'malignant')


@dataclasses.dataclass(frozen=True)
class Datasets:
  train: patch_cache.PatchSet
  val: patch_cache.PatchSet
  test: patch_cache.PatchSet
  class_names: tuple[str, ...]
  report: dict


def default_cache_root() -> pathlib.Path:
  return pathlib.Path(os.environ.get('MAMMOJAX_CACHE', pathlib.Path.home() / '.cache' / 'mammojax'))


def dataset_root(data_config) -> pathlib.Path:
  """Where the CBIS-DDSM layout lives: the user's folder or the synthetic set."""
  if data_config.source == 'synthetic':
    root = data_config.root or default_cache_root() / 'data'
    return synthetic.ensure_synthetic_cbis_ddsm(
        root, num_patients=data_config.synthetic_patients, seed=data_config.synthetic_seed)
  if data_config.source == 'cbis_ddsm':
    if not data_config.root:
      raise ValueError('data.source=cbis_ddsm needs --config.data.root=FOLDER holding the '
                       'four *_case_description_*_set.csv files.')
    return pathlib.Path(data_config.root)
  raise ValueError(f'Unknown data.source {data_config.source!r}; valid choices: {SOURCES}.')


def read_records(data_config) -> tuple[list[dict], list[dict]]:
  """Records of the configured source and the rows its reader skipped."""
  types = tuple(t.strip() for t in data_config.abnormality_types.split(',') if t.strip())
  return cbis_ddsm.read_cbis_ddsm(dataset_root(data_config), abnormality_types=types)


def _counts(patch_set: patch_cache.PatchSet) -> dict:
  counter = collections.Counter(f'{r["source"]}/{CLASS_NAMES[r["label"]]}'
                                for r in patch_set.records)
  return dict(sorted(counter.items()))


def build_datasets(data_config, *, seed: int, cache_dir: str | None = None) -> Datasets:
  """Reads records, splits by patient, and loads or builds the cached patches."""
  records, skipped_rows = read_records(data_config)
  train_records = [r for r in records if r['split'] == 'train']
  test_records = [r for r in records if r['split'] == 'test']
  train_records, val_records = splits.split_train_val(
      train_records, val_fraction=data_config.val_fraction, seed=seed)
  config = preprocess.PreprocessConfig.from_config(data_config.preprocess)
  cache = cache_dir or data_config.cache_dir or default_cache_root() / 'patches'
  sets = {name: patch_cache.load_or_build_patches(
      split_records, config, size=data_config.patch_size, margin=data_config.patch_margin,
      cache_dir=cache) for name, split_records in
          (('train', train_records), ('val', val_records), ('test', test_records))}
  for name, patch_set in sets.items():
    if len(patch_set.images) == 0:
      raise ValueError(f'The {name} split is empty after reading {len(records)} records; '
                       'check data.root and data.abnormality_types.')
  skipped = skipped_rows + [s for p in sets.values() for s in p.skipped]
  if skipped:
    logging.warning('Skipped %d records (reasons in data_report.json); first: %s',
                    len(skipped), skipped[0])
  report = {'counts': {name: _counts(p) for name, p in sets.items()},
            'num_skipped': len(skipped), 'skipped': skipped}
  return Datasets(class_names=CLASS_NAMES, report=report, **sets)


def labels_of(patch_set: patch_cache.PatchSet) -> np.ndarray:
  return np.array([r['label'] for r in patch_set.records], np.int32)
