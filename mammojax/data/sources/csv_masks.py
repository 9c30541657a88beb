"""Reader of a label CSV next to image and mask folders (ISIC skin-lesion style).

Layout (names configurable)::

    root/labels.csv        id,label[,patient_id][,split][,any other column]
    root/images/<id>.jpg   (or .jpeg / .png, any case)
    root/masks/<id>.png    (or ISIC's <id>_segmentation.png / <id>_Segmentation.png)

Decisions:
  * class_name is the label cell as written (stripped): '1', 'melanoma', ...
  * patient_id comes from a 'patient_id' or 'patient' column when there is
    one (so one patient's lesions never split apart), else the id.
  * split comes from a 'split' column when there is one (train, val or
    validation, test, or empty), else ''.
  * The other columns are kept, as text, in ``record['columns']``.
  * A row whose image is missing is skipped with its reason. A row whose
    mask is missing is kept as a whole-image example: mask_paths [] and
    ``'mask_missing': True``, and a warning counts them, because a set where
    only some lesions are outlined is common and still classifiable.
  * ids are data: an id with '..' or a path separator may name a subfolder
    of images/ (or masks/), never a file outside it; such rows are skipped.
"""

from __future__ import annotations

import collections
import csv
import logging
import os

from mammojax.data import records as records_lib

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')
MASK_PATTERNS = ('{id}.png', '{id}_segmentation.png', '{id}_Segmentation.png')
PATIENT_COLUMNS = ('patient_id', 'patient')
SPLIT_COLUMN = 'split'
SPLIT_NAMES = {'train': 'train', 'val': 'val', 'validation': 'val', 'test': 'test', '': ''}


def read_csv_with_masks(root: str | os.PathLike, *, csv_name: str = 'labels.csv',
                        id_column: str = 'id', label_column: str = 'label',
                        image_dir: str = 'images', mask_dir: str | None = 'masks',
                        source: str = 'csv_masks') -> tuple[list[dict], list[dict]]:
  """Read ``root/csv_name`` and find each row's image and mask.

  Args:
    root: dataset folder.
    csv_name: the label CSV, relative to ``root``.
    id_column, label_column: names of the id and class columns (case and
      surrounding spaces ignored).
    image_dir, mask_dir: folders of ``<id>.<suffix>`` images and masks,
      relative to ``root``; ``mask_dir=None`` when the set has no masks.
    source: the records' source name and id prefix.

  Returns:
    ``(records, skipped)``: one record per usable row with id
    '<source>/<id>', image_id (= id), image_path, class_name, patient_id,
    source, split, mask_paths ([] or one file), rois [], mask_missing and
    columns (the other cells). ``skipped`` holds ``{'file', 'row', 'id',
    'reason'}`` per row left out (row = CSV line, the header being line 1).

  Raises:
    FileNotFoundError: the CSV or the image folder is missing.
    ValueError: the id or label column is missing, ids repeat, or a split
      cell is not a split name.
  """
  root = os.path.abspath(root)
  # The names below come from the user's config, not from the data: they may
  # point anywhere (an absolute image_dir on another disk is fine).
  csv_path = os.path.normpath(os.path.join(root, csv_name))
  image_root = os.path.normpath(os.path.join(root, image_dir))
  mask_root = None if mask_dir is None else os.path.normpath(os.path.join(root, mask_dir))
  if not os.path.isfile(csv_path):
    raise FileNotFoundError(f'Label CSV not found: {csv_path}. Expected {root}/{csv_name} with '
                            f'columns {id_column!r} and {label_column!r}, or pass csv_name=.')
  if not os.path.isdir(image_root):
    raise FileNotFoundError(f'Image folder not found: {image_root}; expected '
                            f'{image_dir}/<id>.jpg next to {csv_name}, or pass image_dir=.')
  records, skipped = [], []
  for line, row in _read_rows(csv_path, id_column, label_column):
    try:
      records.append(_row_to_record(row, image_root, mask_root, source))
    except _SkipRow as reason:
      skipped.append({'file': csv_path, 'row': line, 'id': f'{source}/{row["id"]}',
                      'reason': str(reason)})
    except ValueError as error:  # a bad cell: name the file and line, stop the run
      raise ValueError(f'{csv_path}: row {line}: {error}') from None
  _warn_missing_masks(records, mask_root)
  return records, skipped


class _SkipRow(Exception):
  """A row that cannot be used; its message is the reason reported."""


def _read_rows(csv_path: str, id_column: str,
               label_column: str) -> list[tuple[int, dict]]:
  """[(starting line, {'id', 'label', 'patient', 'split', 'columns'})]; ValueError on bad tables."""
  with open(csv_path, newline='', encoding='utf-8-sig') as handle:  # -sig: spreadsheet BOM
    reader = csv.reader(handle)
    header = [name.strip() for name in next(reader, [])]
    lowered = [name.lower() for name in header]
    for column in (id_column, label_column):
      if column.strip().lower() not in lowered:
        raise ValueError(f'{csv_path}: no column {column!r}; columns found: {header}. Pass '
                         'id_column=/label_column= to name the right ones.')
    rows, previous_line = [], reader.line_num
    for cells in reader:
      # Quoted cells may span lines: the row starts after the previous one.
      start_line, previous_line = previous_line + 1, reader.line_num
      if any(cell.strip() for cell in cells):
        cells = dict(zip(lowered, (cell.strip() for cell in cells)))
        rows.append((start_line, _named_cells(cells, id_column, label_column)))
  _check_unique_ids(csv_path, rows)
  return rows


def _named_cells(cells: dict[str, str], id_column: str, label_column: str) -> dict:
  id_key, label_key = id_column.strip().lower(), label_column.strip().lower()
  patient_key = next((key for key in PATIENT_COLUMNS if cells.get(key)), None)
  used = {id_key, label_key, SPLIT_COLUMN, *PATIENT_COLUMNS}
  return {
      'id': cells.get(id_key, ''),
      'label': cells.get(label_key, ''),
      'patient': cells[patient_key] if patient_key else '',
      'split': cells.get(SPLIT_COLUMN, ''),
      'columns': {key: value for key, value in cells.items() if key not in used},
  }


def _check_unique_ids(csv_path: str, rows: list[tuple[int, dict]]) -> None:
  lines = collections.defaultdict(list)
  for line, row in rows:
    if row['id']:
      lines[row['id']].append(line)
  repeated = {row_id: found for row_id, found in lines.items() if len(found) > 1}
  if repeated:
    shown = ', '.join(f'{row_id!r} (rows {found})' for row_id, found in list(repeated.items())[:5])
    raise ValueError(f'{csv_path}: {len(repeated)} id(s) repeat: {shown}. Each id must '
                     'appear once; merge or rename the rows.')


def _row_to_record(row: dict, image_root: str, mask_root: str | None, source: str) -> dict:
  """One record; _SkipRow when the row has no id, label or image."""
  if not row['id']:
    raise _SkipRow('empty id')
  if not row['label']:
    raise _SkipRow('empty label')
  image_path = _find_file(image_root, _image_names(row['id']), row['id'])
  if image_path is None:
    raise _SkipRow(f'image not found: {os.path.join(image_root, row["id"])}'
                   f'{{{",".join(IMAGE_SUFFIXES)}}}')
  mask_path = None if mask_root is None else _find_file(
      mask_root, [pattern.format(id=row['id']) for pattern in MASK_PATTERNS], row['id'])
  split = row['split'].lower()
  if split not in SPLIT_NAMES:
    raise ValueError(f'split {row["split"]!r} is not one of {sorted(SPLIT_NAMES)}.')
  record_id = f'{source}/{row["id"]}'
  return {
      'id': record_id,
      'image_id': record_id,
      'image_path': image_path,
      'class_name': row['label'],
      'patient_id': row['patient'] or row['id'],
      'source': source,
      'split': SPLIT_NAMES[split],
      'mask_paths': [] if mask_path is None else [mask_path],
      'rois': [],
      'mask_missing': mask_root is not None and mask_path is None,
      'columns': row['columns'],
  }


def _image_names(row_id: str) -> list[str]:
  """File names tried for an id: as given when it has a suffix, then id + each suffix."""
  given = [row_id] if row_id.lower().endswith(IMAGE_SUFFIXES) else []
  return given + [row_id + suffix for suffix in IMAGE_SUFFIXES + tuple(
      suffix.upper() for suffix in IMAGE_SUFFIXES)]


def _find_file(folder: str, names: list[str], row_id: str) -> str | None:
  """The first of ``names`` that exists in ``folder``; _SkipRow if the id leaves it."""
  for name in names:
    try:
      path = records_lib.path_inside(folder, name)
    except ValueError:
      raise _SkipRow(f'id {row_id!r} names a file outside {folder}') from None
    if os.path.isfile(path):
      return path
  return None


def _warn_missing_masks(records: list[dict], mask_root: str | None) -> None:
  missing = sum(record['mask_missing'] for record in records)
  if missing:
    logging.warning('%d of %d images have no mask in %s; they are whole-image examples '
                    "(record['mask_missing'] is True).", missing, len(records), mask_root)
