"""Reader of the CBIS-DDSM case-description CSVs.

CBIS-DDSM ships four CSVs (mass/calcification x train/test) with one row per
abnormality. ``read_cbis_ddsm`` turns them into records (``data.records``):
plain dicts with absolute paths, the class, and the patient/image keys that
later steps (mask creation, grouped splits, patches) need.

Two folder layouts are read::

    root/                                    CSV paths exist as written
      mass_case_description_train_set.csv    (and the three other CSVs)
      Mass-Training_P_00001_LEFT_CC/...      (PNG conversions, the synthetic set)

    root/                                    the TCIA download (NBIA retriever)
      mass_case_description_train_set.csv
      CBIS-DDSM/                             (or the case folders right in root)
        Mass-Training_P_00001_LEFT_CC/07-20-2016-DDSM-74994/
            1.000000-full mammogram images-24515/1-1.dcm
        Mass-Training_P_00001_LEFT_CC_1/07-21-2016-DDSM-22101/
            1.000000-ROI mask images-31902/1-1.dcm
            1.000000-cropped images-10245/1-2.dcm  (or both files in one series)

The CSV cells of a TCIA download name UID folders that do not exist on disk
(``Mass-Training_P_00001_LEFT_CC/1.3.6.../1.3.6.../000000.dcm``), so a path
that is not found is resolved by its first component, the case folder. Which
file of an abnormality folder is the ROI mask and which the crop is decided by
content, never by name (the numbering is not consistent across the download):
the DICOM SeriesDescription when it tells the files apart, else the header
size (the mask has the full image's size), else the pixels (the mask is
binary, the crop is not). The same test catches rows whose crop and mask
columns are swapped (it happens in the real CSVs); they are swapped back.

Every record says what was repaired in ``record['fixed']``, a list of
``FIX_*`` strings (empty when the row was used as written), so a run can
report e.g. ``sum(FIX_SWAPPED in r['fixed'] for r in records)``.

Rows are read strictly where a silent mistake would corrupt labels (unknown
pathology, missing column, duplicate ids: ``ValueError``), and leniently where
the real download is known to be incomplete (a missing or unsafe file path:
the row is reported in ``skipped`` with its reason, never dropped silently).
"""

from __future__ import annotations

import collections
import csv
import os
import pathlib
from collections.abc import Iterator, Sequence

from mammojax.data import records as records_lib
from mammojax.data.sources import cbis_ddsm_files

SOURCE_NAME = 'cbis_ddsm'
SPLITS = ('train', 'test')
ABNORMALITY_TYPES = ('mass', 'calcification')

CSV_FILE_NAMES = {
    ('mass', 'train'): 'mass_case_description_train_set.csv',
    ('mass', 'test'): 'mass_case_description_test_set.csv',
    ('calcification', 'train'): 'calc_case_description_train_set.csv',
    ('calcification', 'test'): 'calc_case_description_test_set.csv',
}

# Prefix of the image folders in the real download; reused in record ids so an
# id names the same thing a CBIS-DDSM user already knows.
ID_PREFIXES = {
    ('mass', 'train'): 'Mass-Training',
    ('mass', 'test'): 'Mass-Test',
    ('calcification', 'train'): 'Calc-Training',
    ('calcification', 'test'): 'Calc-Test',
}

PATHOLOGY_LABELS = {'BENIGN': 0, 'BENIGN_WITHOUT_CALLBACK': 0, 'MALIGNANT': 1}
CLASS_NAMES = ('benign', 'malignant')  # indexed by the label
LATERALITIES = ('LEFT', 'RIGHT')
VIEWS = ('CC', 'MLO')

# What ``record['fixed']`` may list.
FIX_TCIA_PATHS = 'paths resolved in the TCIA download folders'
FIX_SWAPPED = 'swapped crop/mask columns'

# The NBIA retriever puts the case folders in this subfolder of the download.
TCIA_FOLDER = 'CBIS-DDSM'

# Normalised column names (see ``normalize_column_name``).
PATIENT_COLUMN = 'patient id'
LATERALITY_COLUMN = 'left or right breast'
VIEW_COLUMN = 'image view'
ABNORMALITY_ID_COLUMN = 'abnormality id'
PATHOLOGY_COLUMN = 'pathology'
IMAGE_COLUMN = 'image file path'
CROP_COLUMN = 'cropped image file path'
MASK_COLUMN = 'roi mask file path'

REQUIRED_COLUMNS = (
    PATIENT_COLUMN,
    LATERALITY_COLUMN,
    VIEW_COLUMN,
    ABNORMALITY_ID_COLUMN,
    PATHOLOGY_COLUMN,
    IMAGE_COLUMN,
    MASK_COLUMN,
)
PATH_COLUMNS = (IMAGE_COLUMN, CROP_COLUMN, MASK_COLUMN)

_LAYOUT_HINT = ('Expected layout: <root>/{csv_names} next to the image folders (or next to '
                'the CBIS-DDSM/ folder of a TCIA download), with the CSV path cells relative '
                "to <root> (e.g. 'Mass-Training_P_00001_LEFT_CC/full/000000.png').")


class _SkipRow(Exception):
  """A row that cannot be used; its message is the reason reported."""


def read_cbis_ddsm(
    root: str | os.PathLike,
    *,
    splits: Sequence[str] = SPLITS,
    abnormality_types: Sequence[str] = ABNORMALITY_TYPES,
) -> tuple[list[dict], list[dict]]:
  """Read the CBIS-DDSM case-description CSVs under ``root``.

  Args:
    root: dataset folder holding the CSVs; CSV paths are relative to it.
    splits: any of ``'train'``, ``'test'``.
    abnormality_types: any of ``'mass'``, ``'calcification'``.

  Returns:
    ``(records, skipped)``. One record per usable abnormality row with keys
    id, image_id, image_path, class_name ('benign'/'malignant'), label (0/1),
    mask_paths (one file), rois ([]), crop_path (None when absent),
    pathology, abnormality_type, abnormality_id, patient_id, laterality,
    view, split, source and fixed (the ``FIX_*`` repairs applied).
    ``skipped`` holds ``{'file', 'row', 'id', 'reason'}`` for each row left
    out (``row`` is the 1-based line where the row starts in the CSV, the
    header being line 1).

  Raises:
    FileNotFoundError: a requested CSV is missing.
    ValueError: bad arguments, a missing column, an unknown pathology,
      laterality or view, a non-integer abnormality id, duplicate ids.
  """
  _check_choices('split', splits, SPLITS)
  _check_choices('abnormality type', abnormality_types, ABNORMALITY_TYPES)
  # Lexical absolute path, not resolve(): a dataset folder reached through
  # a symlink (common on clusters) must still contain its own files.
  root = pathlib.Path(os.path.abspath(root))
  records, skipped = [], []
  for abnormality_type in abnormality_types:
    for split in splits:
      csv_path = find_csv(root, abnormality_type, split)
      new_records, new_skipped = _read_csv_file(root, csv_path, abnormality_type, split)
      records.extend(new_records)
      skipped.extend(new_skipped)
  _check_unique_ids(records)
  return records, skipped


def find_csv(root: pathlib.Path, abnormality_type: str, split: str) -> pathlib.Path:
  """Return the case-description CSV for one (type, split) or raise FileNotFoundError."""
  csv_path = root / CSV_FILE_NAMES[(abnormality_type, split)]
  if not csv_path.is_file():
    names = ', '.join(sorted(CSV_FILE_NAMES.values()))
    raise FileNotFoundError(f'CBIS-DDSM {abnormality_type} {split} CSV not found: {csv_path}. ' +
                            _LAYOUT_HINT.format(csv_names=f'{{{names}}}'))
  return csv_path


def normalize_column_name(name: str) -> str:
  """'  Breast_Density ' -> 'breast density' (the real CSVs mix both spellings)."""
  return ' '.join(name.replace('_', ' ').split()).lower()


def _check_choices(what: str, given: Sequence[str], allowed: Sequence[str]) -> None:
  if isinstance(given, str):
    raise ValueError(f'Pass a sequence of {what}s, e.g. ({given!r},), not a string.')
  unknown = [value for value in given if value not in allowed]
  if unknown:
    raise ValueError(f'Unknown {what} {unknown}; allowed: {list(allowed)}.')


def _read_csv_file(root: pathlib.Path, csv_path: pathlib.Path, abnormality_type: str,
                   split: str) -> tuple[list[dict], list[dict]]:
  """Turn one CSV into records, collecting the rows that must be skipped."""
  records, skipped = [], []
  for row_number, row in _iter_rows(csv_path):
    context = _RowContext(root, csv_path, row_number, abnormality_type, split)
    keys = _row_keys(row, context)
    try:
      records.append(_row_to_record(row, keys, context))
    except _SkipRow as reason:
      skipped.append({
          'file': str(csv_path),
          'row': row_number,
          'id': keys['id'],
          'reason': str(reason)
      })
  return records, skipped


def _iter_rows(csv_path: pathlib.Path) -> Iterator[tuple[int, dict[str, str]]]:
  """Yield (starting line number, {normalised column: cleaned cell}) per data row."""
  # utf-8-sig: a CSV saved by a spreadsheet program starts with a BOM that
  # would otherwise stick to the first column name.
  with open(csv_path, newline='', encoding='utf-8-sig') as handle:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
      raise ValueError(f'{csv_path}: empty file, expected a header row.')
    columns = [normalize_column_name(name) for name in header]
    _check_columns(csv_path, columns)
    previous_line = reader.line_num
    for cells in reader:
      # Quoted cells may span lines, so the row starts right after the
      # previous record, not at reader.line_num.
      start_line, previous_line = previous_line + 1, reader.line_num
      if not any(cell.strip() for cell in cells):
        continue  # blank line, not a row
      cells = cells + [''] * (len(columns) - len(cells))
      yield start_line, {column: _clean_cell(column, cell) for column, cell in zip(columns, cells)}


def _check_columns(csv_path: pathlib.Path, columns: list[str]) -> None:
  missing = [column for column in REQUIRED_COLUMNS if column not in columns]
  if missing:
    raise ValueError(f'{csv_path}: missing required column(s) {missing}; columns found: {columns}.')


def _clean_cell(column: str, cell: str) -> str:
  """Strip stray whitespace; path cells in the real CSVs carry embedded newlines."""
  if column in PATH_COLUMNS:
    return cell.replace('\r', '').replace('\n', '').strip()
  return ' '.join(cell.split())


class _RowContext:
  """Where a row comes from: enough to resolve its paths and word its errors."""

  def __init__(self, root, csv_path, row_number, abnormality_type, split):
    self.root = root
    self.csv_path = csv_path
    self.row_number = row_number
    self.abnormality_type = abnormality_type
    self.split = split

  def error(self, message: str) -> ValueError:
    return ValueError(f'{self.csv_path}: row {self.row_number}: {message}')


def _row_keys(row: dict[str, str], context: _RowContext) -> dict:
  """Identity of a row; its id is the CSV prefix + image key + abnormality id.

  e.g. id 'Mass-Training_P_00001_LEFT_CC_1', image_id 'P_00001_LEFT_CC'.
  """
  patient_id = _required_cell(row, PATIENT_COLUMN, context)
  laterality = _choice_cell(row, LATERALITY_COLUMN, LATERALITIES, context)
  view = _choice_cell(row, VIEW_COLUMN, VIEWS, context)
  abnormality_id = _abnormality_id(row, context)
  image_id = f'{patient_id}_{laterality}_{view}'
  prefix = ID_PREFIXES[(context.abnormality_type, context.split)]
  return {
      'id': f'{prefix}_{image_id}_{abnormality_id}',
      'image_id': image_id,
      'abnormality_id': abnormality_id,
      'patient_id': patient_id,
      'laterality': laterality,
      'view': view,
  }


def _abnormality_id(row: dict[str, str], context: _RowContext) -> int:
  value = _required_cell(row, ABNORMALITY_ID_COLUMN, context)
  try:
    return int(value)
  except ValueError:
    raise context.error(f'abnormality id {value!r} is not an integer.') from None


def _required_cell(row: dict[str, str], column: str, context: _RowContext) -> str:
  value = row.get(column, '')
  if not value:
    raise context.error(f'empty {column!r}.')
  return value


def _choice_cell(row: dict[str, str], column: str, allowed: Sequence[str],
                 context: _RowContext) -> str:
  value = _required_cell(row, column, context).upper()
  if value not in allowed:
    raise context.error(f'unknown {column!r} value {value!r}; allowed: {list(allowed)}.')
  return value


def _row_to_record(row: dict[str, str], keys: dict, context: _RowContext) -> dict:
  """Build one record; raises _SkipRow when its files cannot be used."""
  pathology = _choice_cell(row, PATHOLOGY_COLUMN, tuple(PATHOLOGY_LABELS), context)
  image_path, image_fixes = _locate_image(row, context)
  mask_path, crop_path, roi_fixes = _locate_roi_files(row, image_path, context)
  label = PATHOLOGY_LABELS[pathology]
  return {
      'id': keys['id'],
      'image_id': keys['image_id'],
      'image_path': image_path,
      'class_name': CLASS_NAMES[label],
      'mask_paths': [mask_path],
      'rois': [],
      'crop_path': crop_path,
      'label': label,
      'pathology': pathology,
      'abnormality_type': context.abnormality_type,
      'abnormality_id': keys['abnormality_id'],
      'patient_id': keys['patient_id'],
      'laterality': keys['laterality'],
      'view': keys['view'],
      'split': context.split,
      'source': SOURCE_NAME,
      'fixed': sorted(set(image_fixes + roi_fixes)),
  }


def _locate_image(row: dict[str, str], context: _RowContext) -> tuple[str, list[str]]:
  """(full image, fixes): the CSV path, else the one full image of its TCIA case folder."""
  path = _required_path(row, IMAGE_COLUMN, context)
  if os.path.isfile(path):
    return path, []
  folder, files = _case_folder_files(row[IMAGE_COLUMN], IMAGE_COLUMN, path, context)
  if len(files) > 1:
    files = [file for file in files
             if cbis_ddsm_files.series_kind(cbis_ddsm_files.dicom_header(file)) == 'full']
  if len(files) != 1:
    raise _SkipRow(f'{IMAGE_COLUMN!r} file not found: {path}; its case folder {folder} holds '
                   'several image files and no single one says "full mammogram images"')
  return files[0], [FIX_TCIA_PATHS]


def _locate_roi_files(row: dict[str, str], image_path: str,
                      context: _RowContext) -> tuple[str, str | None, list[str]]:
  """(mask, crop or None, fixes): the CSV paths (swapped back if needed), else the case folder."""
  mask_path = _required_path(row, MASK_COLUMN, context)
  crop_path = _path_inside_root(row[CROP_COLUMN], CROP_COLUMN, context) if row.get(
      CROP_COLUMN) else None
  if crop_path is not None and not os.path.isfile(crop_path):
    crop_path = None  # optional: the crop can always be re-cut from the mask
  full_shape = cbis_ddsm_files.dicom_shape(image_path)
  if os.path.isfile(mask_path):
    return _unswap(mask_path, crop_path, full_shape)
  folder, files = _case_folder_files(row[MASK_COLUMN], MASK_COLUMN, mask_path, context)
  try:
    kinds = cbis_ddsm_files.classify_roi_files(files, full_shape)
  except ValueError as error:
    raise _SkipRow(str(error)) from None
  masks = [file for file in files if kinds[file] == 'mask']
  crops = [file for file in files if kinds[file] == 'crop']
  if len(masks) != 1:
    raise _SkipRow(f'{MASK_COLUMN!r} file not found: {mask_path}; its case folder {folder} '
                   f'holds {len(masks)} ROI masks among {len(files)} image files, expected one')
  return masks[0], crops[0] if len(crops) == 1 else crop_path, [FIX_TCIA_PATHS]


def _unswap(mask_path: str, crop_path: str | None,
            full_shape: tuple[int, int] | None) -> tuple[str, str | None, list[str]]:
  """Swap the CSV's crop and mask cells back when the content says they are reversed."""
  try:
    if cbis_ddsm_files.content_kind(mask_path, full_shape) == 'mask':
      return mask_path, crop_path, []
    if crop_path is not None and cbis_ddsm_files.content_kind(crop_path, full_shape) == 'mask':
      return crop_path, mask_path, [FIX_SWAPPED]
  except ValueError as error:
    raise _SkipRow(str(error)) from None
  raise _SkipRow(f'{MASK_COLUMN!r} file {mask_path} is not a binary mask' +
                 ('' if crop_path is None else f', nor is the cropped image file {crop_path}'))


def _required_path(row: dict[str, str], column: str, context: _RowContext) -> str:
  """Absolute path named by a required cell (the file may not exist), or _SkipRow."""
  cell = row.get(column, '')
  if not cell:
    raise _SkipRow(f'empty {column!r}')
  return _path_inside_root(cell, column, context)


def _case_folder_files(cell: str, column: str, path: str,
                       context: _RowContext) -> tuple[str, list[str]]:
  """The TCIA case folder named by a CSV path's first component, and its image files."""
  name = cell.replace('\\', '/').strip('/').split('/')[0]
  for base in ('', TCIA_FOLDER):
    folder = _path_inside_root(os.path.join(base, name), column, context)
    if name not in ('', '.') and os.path.isdir(folder):
      files = cbis_ddsm_files.image_files(folder)
      if not files:
        raise _SkipRow(f'{column!r} file not found: {path}; its case folder {folder} holds '
                       'no image files')
      return folder, files
  raise _SkipRow(f'{column!r} file not found: {path}, nor a case folder {name!r} in '
                 f'{context.root} or {context.root / TCIA_FOLDER}')


def _path_inside_root(cell: str, column: str, context: _RowContext) -> str:
  """Join a CSV path to the root; _SkipRow if it points outside the dataset."""
  try:
    return records_lib.path_inside(context.root, cell)
  except ValueError:
    raise _SkipRow(f'{column!r} path escapes the dataset root {context.root}: {cell!r}') from None


def _check_unique_ids(records: list[dict]) -> None:
  counts = collections.Counter(record['id'] for record in records)
  duplicates = sorted(record_id for record_id, count in counts.items() if count > 1)
  if duplicates:
    shown = ', '.join(duplicates[:10]) + (' ...' if len(duplicates) > 10 else '')
    raise ValueError(
        f'{len(duplicates)} duplicate abnormality id(s) in the CBIS-DDSM CSVs: {shown}. '
        'Each (CSV, patient, side, view, abnormality id) must appear once.')
