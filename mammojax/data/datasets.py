"""From ``config.data`` to train/val/test patch sets and a data report.

Flow: each configured source's reader → records (``records.py``) → integer
labels from ``data.classes`` → leakage-free splits → cached patch arrays.
Every record left out on the way is counted, with its reason, in the report
that the run writes to ``data_report.json``.
"""

import collections
import dataclasses
import logging
import os
import pathlib

import numpy as np

from mammojax.data import examples, patch_cache, preprocess, records as records_lib, splits
from mammojax.data.sources import cbis_ddsm, csv_masks, folders, inbreast, mias, synthetic
from mammojax.data.sources import image_folder, tfds_cbis

MAMMOGRAPHY_CLASSES = ('benign', 'malignant')


def _read_cbis_ddsm(root: pathlib.Path, data_config):
  return cbis_ddsm.read_cbis_ddsm(root, abnormality_types=_abnormality_types(data_config))


def _read_mias(root: pathlib.Path, data_config):
  del data_config
  return mias.read_mias(root)


def _read_inbreast(root: pathlib.Path, data_config):
  del data_config
  return inbreast.read_inbreast(root)


def _read_folders(root: pathlib.Path, data_config):
  del data_config
  return folders.read_class_folders(root, source=root.name or 'folders')


def _read_csv_masks(root: pathlib.Path, data_config):
  return csv_masks.read_csv_with_masks(
      root, csv_name=data_config.csv_file, id_column=data_config.csv_id_column,
      label_column=data_config.csv_label_column)


def _read_image_folder(root: pathlib.Path, data_config):
  del data_config
  return image_folder.read_image_folder(root)


def _read_tfds_cbis(root: pathlib.Path | None, data_config):
  del data_config
  return tfds_cbis.read_tfds_cbis(root, cache_dir=default_cache_root() / 'tfds')


# name → (reader(root, data_config) → (records, skipped), default class names or None
# when the classes are whatever the dataset's folders/labels say).
READERS = {
    'synthetic': (_read_cbis_ddsm, MAMMOGRAPHY_CLASSES),  # written in the CBIS-DDSM layout
    'cbis_ddsm': (_read_cbis_ddsm, MAMMOGRAPHY_CLASSES),
    'mias': (_read_mias, MAMMOGRAPHY_CLASSES),
    'inbreast': (_read_inbreast, MAMMOGRAPHY_CLASSES),
    'folders': (_read_folders, None),
    'csv_masks': (_read_csv_masks, None),
    'tfds_cbis': (_read_tfds_cbis, None),
    'images': (_read_image_folder, None),
}
# Sources whose root may stay empty: the synthetic set is written to the
# cache, TFDS looks in its default data_dir (~/tensorflow_datasets).
OPTIONAL_ROOT = ('synthetic', 'tfds_cbis')
SOURCES = tuple(READERS)


@dataclasses.dataclass(frozen=True)
class Datasets:
  train: patch_cache.PatchSet
  val: patch_cache.PatchSet
  test: patch_cache.PatchSet
  class_names: tuple[str, ...]
  report: dict


def default_cache_root() -> pathlib.Path:
  return pathlib.Path(os.environ.get('MAMMOJAX_CACHE', pathlib.Path.home() / '.cache' / 'mammojax'))


def _abnormality_types(data_config) -> tuple[str, ...]:
  return tuple(t.strip() for t in data_config.abnormality_types.split(',') if t.strip())


def _names(text: str) -> list[str]:
  return [part.strip() for part in text.split(',') if part.strip()]


def configured_sources(data_config) -> list[tuple[str, str]]:
  """[(source name, root)] from ``data.source`` and ``data.root`` (comma-separated)."""
  # Empty roots keep their place ('synthetic' needs none): ',/data/mias'.
  names, roots = _names(data_config.source), [r.strip() for r in data_config.root.split(',')]
  unknown = [name for name in names if name not in READERS]
  if not names or unknown:
    raise ValueError(f'Unknown data.source {data_config.source!r}; valid choices: {SOURCES} '
                     '(several: comma-separated, e.g. cbis_ddsm,mias).')
  if len(names) > 1 and len(roots) != len(names):
    raise ValueError(f'data.source names {len(names)} sources; give as many data.root '
                     f'folders, comma-separated in the same order (got {len(roots)}).')
  pairs = list(zip(names, roots if len(names) > 1 else [data_config.root]))
  for name, root in pairs:
    if name not in OPTIONAL_ROOT and not root:
      raise ValueError(f'data.source={name} needs --config.data.root=FOLDER (the dataset as '
                       'downloaded); see the README\'s Data section for its layout.')
    if root and not pathlib.Path(root).is_dir():
      raise ValueError(f'data.root {root} is not a folder; point it at the {name} dataset.')
  return pairs


def dataset_root(name: str, root: str, data_config) -> pathlib.Path:
  """The folder a source reads: the user's, or the synthetic set (written once)."""
  if name == 'synthetic':
    return synthetic.ensure_synthetic_cbis_ddsm(
        root or default_cache_root() / 'data', num_patients=data_config.synthetic_patients,
        seed=data_config.synthetic_seed)
  return pathlib.Path(root) if root else None


def class_names_for(data_config, records: list[dict]) -> tuple[str, ...]:
  """``data.classes``, or the first source's defaults, or the classes found (sorted)."""
  if data_config.classes:
    return tuple(_names(data_config.classes))
  first = _names(data_config.source)[0]
  return READERS[first][1] or tuple(sorted({r['class_name'] for r in records}))


def read_records(data_config) -> tuple[list[dict], list[dict]]:
  """Records of every configured source, and the inputs their readers skipped."""
  all_records, all_skipped = [], []
  pairs = configured_sources(data_config)
  for name, root in pairs:
    reader = READERS[name][0]
    found, skipped = reader(dataset_root(name, root, data_config), data_config)
    for record in found:
      records_lib.check_record(record)
    if name == 'synthetic':  # read through the CBIS-DDSM reader, reported as itself
      found = [{**record, 'source': 'synthetic'} for record in found]
    if len(pairs) > 1:  # ids must stay unique across sources
      found = [{**record, 'id': f'{name}/{record["id"]}'} for record in found]
    logging.info('%s: %d records, %d skipped.', name, len(found), len(skipped))
    all_records += found
    all_skipped += [{'source': name, **s} for s in skipped]
  return all_records, all_skipped


def label_records(records: list[dict], class_names: tuple[str, ...]
                  ) -> tuple[list[dict], list[dict]]:
  """Sets ``label`` = index of ``class_name``; records of other classes are skipped."""
  index = {name: i for i, name in enumerate(class_names)}
  kept, skipped = [], []
  for record in records:
    if record['class_name'] in index:
      kept.append({**record, 'label': index[record['class_name']]})
    else:
      skipped.append({'id': record['id'], 'file': record['image_path'],
                      'reason': f'class {record["class_name"]!r} is not in data.classes '
                                f'{list(class_names)}'})
  return kept, skipped


def _counts(split_records: list[dict], class_names) -> dict:
  """{source: {class: count}} of one split."""
  counts = collections.defaultdict(collections.Counter)
  for record in split_records:
    counts[record['source']][class_names[record['label']]] += 1
  return {source: dict(sorted(c.items())) for source, c in sorted(counts.items())}


def _reasons(skipped: list[dict]) -> dict:
  """How many records each kind of reason skipped (the text before any path)."""
  kinds = collections.Counter(s['reason'].split(':')[0][:80] for s in skipped)
  return dict(kinds.most_common())


def background_label(data_config, class_names: tuple[str, ...]) -> int:
  """The label of background patches (-1 when none are drawn)."""
  if not data_config.background_patches:
    return -1
  if examples.BACKGROUND_CLASS not in class_names:
    raise ValueError(f'data.background_patches={data_config.background_patches} needs a '
                     f'{examples.BACKGROUND_CLASS!r} class: e.g. --config.data.classes='
                     'background,benign,malignant --config.model.num_classes=3.')
  return class_names.index(examples.BACKGROUND_CLASS)


def _repairs(records: list[dict]) -> dict:
  """How many records each reader repair touched (e.g. swapped CBIS-DDSM columns)."""
  return dict(collections.Counter(fix for r in records for fix in r.get('fixed', ())))


@dataclasses.dataclass(frozen=True)
class SplitRecords:
  """Labelled records per split, the class names, and what was skipped on the way."""
  splits: dict[str, list[dict]]
  class_names: tuple[str, ...]
  skipped: list[dict]
  repaired: dict


def split_records(data_config, *, seed: int, transform_records=None) -> SplitRecords:
  """Reads every source, labels records by ``data.classes`` and splits them by patient.

  ``transform_records`` (records → records), when given, runs right after
  reading: e.g. replacing drawn lesion masks by a segmentation run's.
  """
  records, skipped = read_records(data_config)
  if transform_records is not None:
    records = transform_records(records)
  class_names = class_names_for(data_config, records)
  records, unlabelled = label_records(records, class_names)
  by_split, leaking = splits.assign_splits(
      records, val_fraction=data_config.val_fraction, test_fraction=data_config.test_fraction,
      seed=seed, folds=data_config.folds, fold=data_config.fold)
  return SplitRecords(by_split, class_names, skipped + unlabelled + leaking, _repairs(records))


def make_report(class_names, records_by_split: dict, skipped: list[dict], repaired: dict
                ) -> dict:
  """data_report.json: classes, counts per split × source × class, repairs, skips."""
  if skipped:
    logging.warning('Skipped %d records (reasons in data_report.json); first: %s',
                    len(skipped), skipped[0])
  return {'classes': list(class_names),
          'counts': {name: _counts(split, class_names) for name, split in records_by_split.items()},
          'repaired': repaired, 'num_skipped': len(skipped),
          'skipped_by_reason': _reasons(skipped), 'skipped': skipped}


def build_datasets(data_config, *, seed: int, cache_dir: str | None = None,
                   transform_records=None) -> Datasets:
  """Reads records, splits by patient, and loads or builds the cached patches."""
  found = split_records(data_config, seed=seed, transform_records=transform_records)
  by_split, class_names = found.splits, found.class_names
  config = preprocess.PreprocessConfig.from_config(data_config.preprocess)
  cache = cache_dir or data_config.cache_dir or default_cache_root() / 'patches'
  spec = dict(size=data_config.patch_size, margin=data_config.patch_margin,
              crop=data_config.crop, cache_dir=cache, seed=seed,
              min_overlap=data_config.crop_min_overlap,
              background_per_image=data_config.background_patches,
              background_label=background_label(data_config, class_names))
  sets = {name: patch_cache.load_or_build_patches(
      by_split[name], config, **spec,
      crops_per_lesion=data_config.crops_per_lesion if name == 'train' else 1)
          for name in ('train', 'val', 'test')}
  for name, patch_set in sets.items():
    if len(patch_set.images) == 0:
      raise ValueError(f'The {name} split is empty; check data.root, data.classes and '
                       'data.abnormality_types (data_report.json lists what was skipped).')
  skipped = found.skipped + [s for p in sets.values() for s in p.skipped]
  report = make_report(class_names, {name: p.records for name, p in sets.items()}, skipped,
                       found.repaired)
  return Datasets(class_names=class_names, report=report, **sets)


def labels_of(patch_set: patch_cache.PatchSet) -> np.ndarray:
  return np.array([r['label'] for r in patch_set.records], np.int32)
