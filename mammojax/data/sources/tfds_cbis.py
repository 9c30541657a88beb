"""The TFDS ``curated_breast_imaging_ddsm`` patches as a source, once the user built it.

TFDS samples 224x224 patches from the CBIS-DDSM mammograms (5 classes:
BACKGROUND, BENIGN_CALCIFICATION, BENIGN_MASS, MALIGNANT_CALCIFICATION,
MALIGNANT_MASS) and splits them by patient into train/validation/test. It
is read with ``tfds.data_source`` (random access to ArrayRecord files, no
TensorFlow needed). Records point at image files, so the decoded patches are
written once as PNGs under ``cache_dir``::

    cache_dir/curated_breast_imaging_ddsm/patches/<version>/<split>/000000.png ...
                                                           /<split>/index.csv

``index.csv`` (file, tfds_id, label) is written last: a split folder without
it, or with another example count, was interrupted or is stale and is
written again. Later calls read only ``index.csv``.

The patches config stores no patient, only the patch id
'<study>/<series>/abnorm_<k>/patch_<n>' (or '.../background_<n>'); its first
two parts name the full mammogram, which becomes image_id and patient_id, so
patches of one image never split apart (TFDS's own splits are by patient).
The 'original-calc'/'original-mass' configs hold the CBIS-DDSM images and
masks themselves: read the same download with ``read_cbis_ddsm`` instead.
"""

from __future__ import annotations

import csv
import os
import pathlib
import shutil
import uuid
from collections.abc import Sequence

import cv2
import tensorflow_datasets as tfds

DATASET_NAME = 'curated_breast_imaging_ddsm'
CONFIGS = ('patches',)
SPLITS = {'train': 'train', 'validation': 'val', 'test': 'test'}  # TFDS name -> ours
INDEX_NAME = 'index.csv'
_BUILD_HINT = ('Build it once with TensorFlow installed: tfds build {name} '
               '--manual_dir=<folder of the CBIS-DDSM PNGs> --data_dir={data_dir} '
               '--file_format=array_record (see the TFDS catalog page of {name} for '
               'the manual download and the DICOM to PNG conversion).')


def read_tfds_cbis(data_dir: str | os.PathLike | None = None, *,
                   cache_dir: str | os.PathLike, config_name: str = 'patches',
                   splits: Sequence[str] = tuple(SPLITS),
                   source: str = 'tfds_cbis') -> tuple[list[dict], list[dict]]:
  """Records of the built TFDS ``curated_breast_imaging_ddsm`` patches.

  Args:
    data_dir: the TFDS data_dir the dataset was built in (None: TFDS's
      default, ~/tensorflow_datasets or $TFDS_DATA_DIR).
    cache_dir: where the PNGs are written once.
    config_name: 'patches' (the only image-per-example config).
    splits: TFDS split names among 'train', 'validation', 'test'.
    source: the records' source name and id prefix.

  Returns:
    ``(records, [])``: one record per patch with id '<source>/<split>/<n>',
    image_id and patient_id (the patch's full image, see the module
    docstring), image_path (a cached PNG), class_name (the TFDS label name),
    split ('train'/'val'/'test'), source, mask_paths [], rois [] and
    tfds_id. Nothing is skipped: every example decodes to one PNG.

  Raises:
    FileNotFoundError: the dataset is not built (as ArrayRecord) in data_dir.
    ValueError: an unknown config or split.
  """
  if config_name not in CONFIGS:
    raise ValueError(f'config_name {config_name!r} is not supported; valid: {CONFIGS}. The '
                     "'original-*' configs hold the CBIS-DDSM files: use read_cbis_ddsm.")
  unknown = [splits] if isinstance(splits, str) else [s for s in splits if s not in SPLITS]
  if unknown:
    raise ValueError(f'Unknown TFDS split(s) {unknown}; pass a sequence of {list(SPLITS)}.')
  builder = tfds.builder(f'{DATASET_NAME}/{config_name}', data_dir=data_dir)
  data_sources = _open_data_sources(builder, list(splits))
  names = builder.info.features['label'].names
  base = pathlib.Path(cache_dir) / DATASET_NAME / config_name / str(builder.info.version)
  records = []
  for split, data_source in zip(splits, data_sources):
    folder = base / split
    rows = _read_index(folder, len(data_source)) or _write_split(data_source, folder)
    records += [_record(row, folder, SPLITS[split], names, source) for row in rows]
  return records, []


def _open_data_sources(builder, splits: list[str]) -> list:
  """Random-access sources of ``splits``; FileNotFoundError saying how to build when absent."""
  try:
    return builder.as_data_source(split=splits)
  # TFDS reports a missing build as any of these, depending on what it finds.
  except (NotImplementedError, AssertionError, FileNotFoundError, ValueError) as error:
    hint = _BUILD_HINT.format(name=DATASET_NAME, data_dir=builder.data_dir_root)
    found = ('that folder does not exist' if not os.path.isdir(builder.data_dir) else
             f'TFDS says: {" ".join(str(error).split())}')
    raise FileNotFoundError(f'TFDS {builder.name}/{builder.builder_config.name} is not built '
                            f'as ArrayRecord in {builder.data_dir} ({found}). {hint}') from None


def _read_index(folder: pathlib.Path, expected: int) -> list[dict] | None:
  """The cached split's rows, or None when the cache is absent, interrupted or stale."""
  index = folder / INDEX_NAME
  if not index.is_file():
    return None
  with open(index, newline='', encoding='utf-8') as handle:
    rows = list(csv.DictReader(handle))
  if len(rows) != expected or not all((folder / row['file']).is_file() for row in rows):
    return None
  return rows


def _write_split(data_source, folder: pathlib.Path) -> list[dict]:
  """Decode every example to ``folder/<n>.png`` and index them; atomic via a temp folder."""
  temp = folder.with_name(f'.{folder.name}.tmp-{uuid.uuid4().hex}')
  temp.mkdir(parents=True)
  rows = []
  for index in range(len(data_source)):
    example = data_source[index]
    name = f'{index:06d}.png'
    if not cv2.imwrite(str(temp / name), example['image'][..., 0]):
      raise OSError(f'Cannot write {temp / name}; check that cache_dir is writable.')
    rows.append({'file': name, 'tfds_id': _text(example['id']),
                 'label': int(example['label'])})
  with open(temp / INDEX_NAME, 'w', newline='', encoding='utf-8') as handle:
    writer = csv.DictWriter(handle, fieldnames=['file', 'tfds_id', 'label'])
    writer.writeheader()
    writer.writerows(rows)
  if folder.exists():  # an interrupted or stale copy, found unusable by _read_index
    shutil.rmtree(folder)
  os.replace(temp, folder)
  return rows


def _text(value) -> str:
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def _record(row: dict, folder: pathlib.Path, split: str, names: Sequence[str],
            source: str) -> dict:
  record_id = f'{source}/{split}/{pathlib.Path(row["file"]).stem}'
  parts = row['tfds_id'].split('/')
  image_key = '/'.join(parts[:2]) if len(parts) > 2 else row['tfds_id'] or record_id
  return {
      'id': record_id,
      'image_id': image_key,
      'image_path': str(folder / row['file']),
      'class_name': names[int(row['label'])],
      'patient_id': image_key,
      'source': source,
      'split': split,
      'mask_paths': [],
      'rois': [],
      'tfds_id': row['tfds_id'],
  }
