"""Reader of the CBIS-DDSM case-description CSVs.

CBIS-DDSM ships four CSVs (mass/calcification x train/test) with one row per
abnormality. ``read_cbis_ddsm`` turns them into records: plain dicts with
absolute paths, a binary label and the patient/image keys that later steps
(mask creation, grouped splits, patches) need.

Expected folder layout (the synthetic set written by
``mammojax.data.sources.synthetic`` follows it)::

    root/
      mass_case_description_train_set.csv    (and the three other CSVs)
      Mass-Training_P_00001_LEFT_CC/...      image, crop and mask files,
      ...                                    at the paths the CSV cells give,
                                             relative to root

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

SOURCE_NAME = "cbis_ddsm"
SPLITS = ("train", "test")
ABNORMALITY_TYPES = ("mass", "calcification")

CSV_FILE_NAMES = {
    ("mass", "train"): "mass_case_description_train_set.csv",
    ("mass", "test"): "mass_case_description_test_set.csv",
    ("calcification", "train"): "calc_case_description_train_set.csv",
    ("calcification", "test"): "calc_case_description_test_set.csv",
}

# Prefix of the image folders in the real download; reused in record ids so an
# id names the same thing a CBIS-DDSM user already knows.
ID_PREFIXES = {
    ("mass", "train"): "Mass-Training",
    ("mass", "test"): "Mass-Test",
    ("calcification", "train"): "Calc-Training",
    ("calcification", "test"): "Calc-Test",
}

PATHOLOGY_LABELS = {"BENIGN": 0, "BENIGN_WITHOUT_CALLBACK": 0, "MALIGNANT": 1}
LATERALITIES = ("LEFT", "RIGHT")
VIEWS = ("CC", "MLO")

# Normalised column names (see ``normalize_column_name``).
PATIENT_COLUMN = "patient id"
LATERALITY_COLUMN = "left or right breast"
VIEW_COLUMN = "image view"
ABNORMALITY_ID_COLUMN = "abnormality id"
PATHOLOGY_COLUMN = "pathology"
IMAGE_COLUMN = "image file path"
CROP_COLUMN = "cropped image file path"
MASK_COLUMN = "roi mask file path"

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

_LAYOUT_HINT = ("Expected layout: <root>/{csv_names} next to the image folders, with the "
                "CSV path cells relative to <root> (e.g. "
                "'Mass-Training_P_00001_LEFT_CC/full/000000.png').")


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
    splits: any of ``"train"``, ``"test"``.
    abnormality_types: any of ``"mass"``, ``"calcification"``.

  Returns:
    ``(records, skipped)``. One record per usable abnormality row with keys
    id, image_id, image_path, mask_paths, crop_path, label, pathology,
    abnormality_type, abnormality_id, patient_id, laterality, view, split,
    source. ``skipped`` holds ``{"file", "row", "id", "reason"}`` for each
    row left out (``row`` is the 1-based line where the row starts in the
    CSV, the header being line 1).

  Raises:
    FileNotFoundError: a requested CSV is missing.
    ValueError: bad arguments, a missing column, an unknown pathology,
      laterality or view, a non-integer abnormality id, duplicate ids.
  """
  _check_choices("split", splits, SPLITS)
  _check_choices("abnormality type", abnormality_types, ABNORMALITY_TYPES)
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
    names = ", ".join(sorted(CSV_FILE_NAMES.values()))
    raise FileNotFoundError(f"CBIS-DDSM {abnormality_type} {split} CSV not found: {csv_path}. " +
                            _LAYOUT_HINT.format(csv_names=f"{{{names}}}"))
  return csv_path


def normalize_column_name(name: str) -> str:
  """'  Breast_Density ' -> 'breast density' (the real CSVs mix both spellings)."""
  return " ".join(name.replace("_", " ").split()).lower()


def _check_choices(what: str, given: Sequence[str], allowed: Sequence[str]) -> None:
  if isinstance(given, str):
    raise ValueError(f"Pass a sequence of {what}s, e.g. ({given!r},), not a string.")
  unknown = [value for value in given if value not in allowed]
  if unknown:
    raise ValueError(f"Unknown {what} {unknown}; allowed: {list(allowed)}.")


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
          "file": str(csv_path),
          "row": row_number,
          "id": keys["id"],
          "reason": str(reason)
      })
  return records, skipped


def _iter_rows(csv_path: pathlib.Path) -> Iterator[tuple[int, dict[str, str]]]:
  """Yield (starting line number, {normalised column: cleaned cell}) per data row."""
  # utf-8-sig: a CSV saved by a spreadsheet program starts with a BOM that
  # would otherwise stick to the first column name.
  with open(csv_path, newline="", encoding="utf-8-sig") as handle:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
      raise ValueError(f"{csv_path}: empty file, expected a header row.")
    columns = [normalize_column_name(name) for name in header]
    _check_columns(csv_path, columns)
    previous_line = reader.line_num
    for cells in reader:
      # Quoted cells may span lines, so the row starts right after the
      # previous record, not at reader.line_num.
      start_line, previous_line = previous_line + 1, reader.line_num
      if not any(cell.strip() for cell in cells):
        continue  # blank line, not a row
      cells = cells + [""] * (len(columns) - len(cells))
      yield start_line, {column: _clean_cell(column, cell) for column, cell in zip(columns, cells)}


def _check_columns(csv_path: pathlib.Path, columns: list[str]) -> None:
  missing = [column for column in REQUIRED_COLUMNS if column not in columns]
  if missing:
    raise ValueError(f"{csv_path}: missing required column(s) {missing}; columns found: {columns}.")


def _clean_cell(column: str, cell: str) -> str:
  """Strip stray whitespace; path cells in the real CSVs carry embedded newlines."""
  if column in PATH_COLUMNS:
    return cell.replace("\r", "").replace("\n", "").strip()
  return " ".join(cell.split())


class _RowContext:
  """Where a row comes from: enough to resolve its paths and word its errors."""

  def __init__(self, root, csv_path, row_number, abnormality_type, split):
    self.root = root
    self.csv_path = csv_path
    self.row_number = row_number
    self.abnormality_type = abnormality_type
    self.split = split

  def error(self, message: str) -> ValueError:
    return ValueError(f"{self.csv_path}: row {self.row_number}: {message}")


def _row_keys(row: dict[str, str], context: _RowContext) -> dict:
  """Identity of a row; its id is the CSV prefix + image key + abnormality id.

  e.g. id 'Mass-Training_P_00001_LEFT_CC_1', image_id 'P_00001_LEFT_CC'.
  """
  patient_id = _required_cell(row, PATIENT_COLUMN, context)
  laterality = _choice_cell(row, LATERALITY_COLUMN, LATERALITIES, context)
  view = _choice_cell(row, VIEW_COLUMN, VIEWS, context)
  abnormality_id = _abnormality_id(row, context)
  image_id = f"{patient_id}_{laterality}_{view}"
  prefix = ID_PREFIXES[(context.abnormality_type, context.split)]
  return {
      "id": f"{prefix}_{image_id}_{abnormality_id}",
      "image_id": image_id,
      "abnormality_id": abnormality_id,
      "patient_id": patient_id,
      "laterality": laterality,
      "view": view,
  }


def _abnormality_id(row: dict[str, str], context: _RowContext) -> int:
  value = _required_cell(row, ABNORMALITY_ID_COLUMN, context)
  try:
    return int(value)
  except ValueError:
    raise context.error(f"abnormality id {value!r} is not an integer.") from None


def _required_cell(row: dict[str, str], column: str, context: _RowContext) -> str:
  value = row.get(column, "")
  if not value:
    raise context.error(f"empty {column!r}.")
  return value


def _choice_cell(row: dict[str, str], column: str, allowed: Sequence[str],
                 context: _RowContext) -> str:
  value = _required_cell(row, column, context).upper()
  if value not in allowed:
    raise context.error(f"unknown {column!r} value {value!r}; allowed: {list(allowed)}.")
  return value


def _row_to_record(row: dict[str, str], keys: dict, context: _RowContext) -> dict:
  """Build one record; raises _SkipRow when its files cannot be used."""
  pathology = _choice_cell(row, PATHOLOGY_COLUMN, tuple(PATHOLOGY_LABELS), context)
  image_path = _existing_file(row, IMAGE_COLUMN, context)
  mask_path = _existing_file(row, MASK_COLUMN, context)
  return {
      "id": keys["id"],
      "image_id": keys["image_id"],
      "image_path": image_path,
      "mask_paths": [mask_path],
      "crop_path": _optional_file(row, CROP_COLUMN, context),
      "label": PATHOLOGY_LABELS[pathology],
      "pathology": pathology,
      "abnormality_type": context.abnormality_type,
      "abnormality_id": keys["abnormality_id"],
      "patient_id": keys["patient_id"],
      "laterality": keys["laterality"],
      "view": keys["view"],
      "split": context.split,
      "source": SOURCE_NAME,
  }


def _existing_file(row: dict[str, str], column: str, context: _RowContext) -> str:
  """Absolute path of a required file, or _SkipRow saying why it cannot be used."""
  cell = row.get(column, "")
  if not cell:
    raise _SkipRow(f"empty {column!r}")
  path = _path_inside_root(cell, column, context)
  if not os.path.isfile(path):
    raise _SkipRow(f"{column!r} file not found: {path}")
  return path


def _optional_file(row: dict[str, str], column: str, context: _RowContext) -> str | None:
  """Absolute path of the crop when present; the crop can always be re-cut from the mask."""
  cell = row.get(column, "")
  if not cell:
    return None
  path = _path_inside_root(cell, column, context)
  return path if os.path.isfile(path) else None


def _path_inside_root(cell: str, column: str, context: _RowContext) -> str:
  """Join a CSV path to the root; _SkipRow if it points outside the dataset."""
  # Lexical normalisation removes '..' and honours absolute cells, which is
  # what an untrusted CSV can use to escape; symlinks the user placed inside
  # the dataset folder are deliberately followed.
  path = os.path.normpath(os.path.join(context.root, cell.replace("\\", "/")))
  if os.path.commonpath([path, str(context.root)]) != str(context.root):
    raise _SkipRow(f"{column!r} path escapes the dataset root {context.root}: {cell!r}")
  return path


def _check_unique_ids(records: list[dict]) -> None:
  counts = collections.Counter(record["id"] for record in records)
  duplicates = sorted(record_id for record_id, count in counts.items() if count > 1)
  if duplicates:
    shown = ", ".join(duplicates[:10]) + (" ..." if len(duplicates) > 10 else "")
    raise ValueError(
        f"{len(duplicates)} duplicate abnormality id(s) in the CBIS-DDSM CSVs: {shown}. "
        "Each (CSV, patient, side, view, abnormality id) must appear once.")
