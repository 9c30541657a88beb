"""Reader of the INbreast download: DICOMs, OsiriX XML ROIs and INbreast.csv.

Layout::

    root/
      INbreast.csv    'Patient ID;Patient age;Laterality;View;Acquisition date;
                       File Name;ACR;Bi-Rads' (semicolons; File Name = file id)
      AllDICOMs/<file id>_<anonymised patient id>_MG_<L|R>_<CC|ML>_ANON.dcm
      AllXML/<file id>.xml   OsiriX ROI export (an Apple XML plist), present
                             when the image has annotated findings

INbreast labels IMAGES (one BI-RADS category each), so there is one record per
image. Its ``rois`` are the polygons of the findings named in ``lesion_types``
(OsiriX 'Point_px' vertices, in image pixels, clipped to the image); a finding
drawn as a single point (one calcification) becomes a circle of
``POINT_RADIUS_PX``. The patient id comes from the DICOM file name because the
CSV's 'Patient ID' column is anonymised away in the public release.

Strict where a silent mistake would corrupt labels (unknown BI-RADS value,
missing column, duplicate file id: ValueError naming INbreast.csv and the
row); lenient where the download may be incomplete (a missing or unreadable
DICOM, an XML that does not parse, a DICOM without a CSV row, an ROI entirely
outside its image): the item is reported in ``skipped`` with its reason.
"""

from __future__ import annotations

import csv
import os
import pathlib
import plistlib
import re
from collections.abc import Iterator, Sequence
from xml.parsers.expat import ExpatError

import numpy as np
import pydicom

from mammojax.data import records as records_lib

SOURCE_NAME = 'inbreast'
CSV_NAME = 'INbreast.csv'
DICOM_DIR = 'AllDICOMs'
XML_DIR = 'AllXML'
FILE_COLUMN = 'file name'
BIRADS_COLUMN = 'bi-rads'
ACR_COLUMN = 'acr'
REQUIRED_COLUMNS = (FILE_COLUMN, BIRADS_COLUMN)
# BI-RADS categories by increasing suspicion. A bare '4' (not subdivided)
# sits just below 4a, so threshold '4' counts it as malignant and '4b' not.
BIRADS_ORDER = ('1', '2', '3', '4', '4a', '4b', '4c', '5', '6')
LATERALITIES = {'L': 'LEFT', 'R': 'RIGHT'}
VIEWS = {'CC': 'CC', 'ML': 'MLO', 'MLO': 'MLO'}  # INbreast names its MLO views 'ML'
# A lone calcification is annotated as one point; 3 px (about 0.2 mm at
# INbreast's 70 micron pixels) makes it a visible, renderable region.
POINT_RADIUS_PX = 3.0

_DICOM_NAME = re.compile(r'^(\d+)_([0-9a-z]+)_MG_([LR])_(CC|MLO|ML)_ANON\.dcm$', re.IGNORECASE)
_POINT = re.compile(r'^\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*(?:,\s*[-+0-9.eE]+\s*)?\)$')


def read_inbreast(
    root: str | os.PathLike,
    *,
    lesion_types: Sequence[str] = ('Mass',),
    birads_threshold: str = '4',
) -> tuple[list[dict], list[dict]]:
  """Reads an INbreast download into one record per image.

  Args:
    root: the folder holding INbreast.csv, AllDICOMs/ and AllXML/.
    lesion_types: OsiriX ROI names whose shapes become the record's ``rois``
      (compared case-insensitively), e.g. ('Mass',) or ('Mass',
      'Calcification', 'Cluster'). Other findings are listed in ``roi_names``.
    birads_threshold: the lowest BI-RADS category called 'malignant'
      (one of 1, 2, 3, 4, 4a, 4b, 4c, 5, 6). The default '4' gives
      1-3 -> 'benign' and 4a/4b/4c/5/6 -> 'malignant', a common INbreast
      convention; '4b' would leave 4a benign, '3' would make 3 malignant.

  Returns:
    ``(records, skipped)``. Records carry the required keys plus birads,
    acr, laterality ('LEFT'/'RIGHT'), view ('CC'/'MLO'), image_size
    ((rows, columns) from the DICOM header) and roi_names. ``skipped`` holds
    ``{'file', 'id', 'reason'}`` (+ 'row' for CSV rows) for every image or
    ROI left out.

  Raises:
    FileNotFoundError: INbreast.csv or AllDICOMs/ is missing.
    ValueError: bad arguments; a missing column, bad file id, unknown BI-RADS
      value or duplicate file id in INbreast.csv (naming the file and row);
      two DICOMs with one file id.
  """
  if isinstance(lesion_types, str):
    raise ValueError(f'Pass lesion_types as a sequence, e.g. ({lesion_types!r},), not a string.')
  _birads_rank(birads_threshold, 'birads_threshold')  # fail before reading anything
  root = pathlib.Path(os.path.abspath(root))
  csv_path = _existing(root / CSV_NAME, 'file')
  dicoms, skipped = index_dicoms(_existing(root / DICOM_DIR, 'folder'))
  wanted = {name.strip().lower() for name in lesion_types}
  records, rows_seen = [], set()
  for line, row in read_csv_rows(csv_path):
    rows_seen.add(row[FILE_COLUMN])
    record = _read_image(root, csv_path, line, row, dicoms, birads_threshold, skipped)
    if record is not None and _add_rois(root, record, wanted, skipped):
      records_lib.check_record(record)
      records.append(record)
  for file_id in sorted(set(dicoms) - rows_seen):
    skipped.append({'file': dicoms[file_id]['path'], 'id': f'{SOURCE_NAME}_{file_id}',
                    'reason': f'no row for file id {file_id} in {csv_path}'})
  return records, skipped


def birads_class(birads: str, birads_threshold: str = '4') -> str:
  """'malignant' when ``birads`` is at or above ``birads_threshold``, else 'benign'."""
  rank = _birads_rank(birads, 'BI-RADS value')
  return 'malignant' if rank >= _birads_rank(birads_threshold, 'birads_threshold') else 'benign'


def _birads_rank(value: str, what: str) -> int:
  key = str(value).strip().lower()
  if key not in BIRADS_ORDER:
    raise ValueError(f'Unknown {what} {value!r}; valid: {list(BIRADS_ORDER)}.')
  return BIRADS_ORDER.index(key)


def _existing(path: pathlib.Path, kind: str) -> pathlib.Path:
  exists = path.is_file() if kind == 'file' else path.is_dir()
  if not exists:
    raise FileNotFoundError(f'INbreast {kind} not found: {path}. Expected layout: <root>/'
                            f'{CSV_NAME}, <root>/{DICOM_DIR}/<file id>_<patient>_MG_<L|R>_'
                            f'<CC|ML>_ANON.dcm and <root>/{XML_DIR}/<file id>.xml.')
  return path


def index_dicoms(dicom_dir: pathlib.Path) -> tuple[dict[str, dict], list[dict]]:
  """Maps file id -> {'path', 'patient_id', 'laterality', 'view'} from the DICOM names.

  Returns the map and the skips of .dcm files whose name does not follow the
  INbreast pattern. Raises ValueError when two DICOMs share a file id.
  """
  dicoms, skipped = {}, []
  for path in sorted(dicom_dir.iterdir()):
    if path.suffix.lower() != '.dcm':
      continue  # macOS leaves .DS_Store and similar next to the images
    match = _DICOM_NAME.match(path.name)
    if not match:
      skipped.append({'file': str(path), 'id': '', 'reason': 'name does not follow <file id>_'
                      '<patient id>_MG_<L|R>_<CC|ML>_ANON.dcm'})
      continue
    file_id, patient_id, side, view = match.groups()
    if file_id in dicoms:
      raise ValueError(f'Two DICOMs with file id {file_id}: {dicoms[file_id]["path"]} and '
                       f'{path}; keep one.')
    dicoms[file_id] = {'path': str(path), 'patient_id': patient_id,
                       'laterality': LATERALITIES[side.upper()], 'view': VIEWS[view.upper()]}
  return dicoms, skipped


def read_csv_rows(csv_path: pathlib.Path) -> Iterator[tuple[int, dict[str, str]]]:
  """Yields (line number, {lower-case column: stripped cell}) per non-blank row.

  Raises ValueError naming the file and row for a missing column, a file id
  that is not a number, or a file id seen twice.
  """
  seen = {}
  # utf-8-sig: a CSV saved by a spreadsheet program starts with a BOM that
  # would otherwise stick to the first column name.
  with open(csv_path, newline='', encoding='utf-8-sig') as handle:
    reader = csv.reader(handle, delimiter=';')
    header = [' '.join(name.split()).lower() for name in next(reader, [])]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
      raise ValueError(f'{csv_path}: missing column(s) {missing}; columns found: {header}. '
                       'INbreast.csv is semicolon-separated.')
    for cells in reader:
      if not any(cell.strip() for cell in cells):
        continue
      row = {column: cell.strip() for column, cell in zip(header, cells)}
      file_id = row.get(FILE_COLUMN, '')
      if not file_id.isdigit():
        raise ValueError(f'{csv_path}: row {reader.line_num}: File Name {file_id!r} is not a '
                         'numeric INbreast file id.')
      if file_id in seen:
        raise ValueError(f'{csv_path}: row {reader.line_num}: file id {file_id} already on row '
                         f'{seen[file_id]}; remove the duplicate.')
      seen[file_id] = reader.line_num
      _check_birads_cell(row, csv_path, reader.line_num)
      yield reader.line_num, row


def _check_birads_cell(row: dict[str, str], csv_path: pathlib.Path, line: int) -> None:
  if row.get(BIRADS_COLUMN, '').lower() not in BIRADS_ORDER:
    raise ValueError(f'{csv_path}: row {line}: unknown Bi-Rads value '
                     f'{row.get(BIRADS_COLUMN, "")!r}; valid: {list(BIRADS_ORDER)}.')


def read_image_size(path: str) -> tuple[int, int]:
  """(rows, columns) of a DICOM from its header alone; ValueError naming the file."""
  try:
    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    return int(dataset.Rows), int(dataset.Columns)
  except Exception as error:  # pydicom raises many types for one cause: a bad file
    raise ValueError(f'cannot read the DICOM header (Rows, Columns) of {path}: {error}') from None


def _read_image(root: pathlib.Path, csv_path: pathlib.Path, line: int, row: dict[str, str],
                dicoms: dict[str, dict], birads_threshold: str, skipped: list[dict]) -> dict | None:
  """The record of one CSV row before its ROIs, or None (and a skip) without a usable DICOM."""
  file_id = row[FILE_COLUMN]
  record_id = f'{SOURCE_NAME}_{file_id}'
  dicom = dicoms.get(file_id)
  if dicom is None:
    skipped.append({'file': str(csv_path), 'row': line, 'id': record_id,
                    'reason': f'no DICOM named {file_id}_*.dcm in {root / DICOM_DIR}'})
    return None
  try:
    image_size = read_image_size(dicom['path'])
  except ValueError as reason:
    skipped.append({'file': dicom['path'], 'row': line, 'id': record_id, 'reason': str(reason)})
    return None
  birads = row[BIRADS_COLUMN].lower()
  return {
      'id': record_id,
      'image_id': file_id,
      'image_path': dicom['path'],
      'class_name': birads_class(birads, birads_threshold),
      'patient_id': dicom['patient_id'],
      'source': SOURCE_NAME,
      'split': '',  # INbreast has no official split
      'mask_paths': [],
      'rois': [],
      'birads': birads,
      'acr': row.get(ACR_COLUMN, ''),
      'laterality': dicom['laterality'],
      'view': dicom['view'],
      'image_size': image_size,
      'roi_names': [],
  }


def _add_rois(root: pathlib.Path, record: dict, wanted: set[str], skipped: list[dict]) -> bool:
  """Fills rois/roi_names from the image's XML if any; False (and a skip) if it is unreadable."""
  xml_path = records_lib.path_inside(root, f'{XML_DIR}/{record["image_id"]}.xml')
  if not os.path.isfile(xml_path):
    return True  # no annotated finding: a whole-image record
  try:
    findings = read_osirix_rois(xml_path)
  except ValueError as reason:
    skipped.append({'file': xml_path, 'id': record['id'], 'reason': str(reason)})
    return False
  height, width = record['image_size']
  for index, (name, points) in enumerate(findings):
    if name.strip().lower() not in wanted:
      continue
    shape = roi_shape(points, width, height)
    if shape is None:
      skipped.append({'file': xml_path, 'id': record['id'],
                      'reason': f'ROI {index} ({name!r}) has no point inside the '
                                f'{width}x{height} image; ROI left out'})
    else:
      record['rois'].append(shape)
  record['roi_names'] = sorted({name for name, _ in findings})
  return True


def read_osirix_rois(xml_path: str) -> list[tuple[str, list[list[float]]]]:
  """(ROI name, [[x, y], ...]) for every ROI of an OsiriX XML plist export.

  plistlib reads the file as data (it refuses XML entity declarations), never
  as code. Raises ValueError naming the file when it does not parse or lacks
  the Images -> ROIs -> Point_px structure.
  """
  try:
    with open(xml_path, 'rb') as handle:
      plist = plistlib.load(handle, fmt=plistlib.FMT_XML)
    findings = []
    for image in plist['Images']:
      for roi in image.get('ROIs', []):
        points = [parse_point(text, xml_path) for text in roi['Point_px']]
        findings.append((str(roi.get('Name', '')), points))
  except (ValueError, ExpatError, KeyError, TypeError, AttributeError) as error:
    raise ValueError(f'cannot read the OsiriX ROI XML {xml_path}: {type(error).__name__}: '
                     f'{error}. Expected a plist with Images -> ROIs -> Point_px.') from None
  return findings


def parse_point(text: str, xml_path: str) -> list[float]:
  """'(1021.5, 733.25)' -> [1021.5, 733.25]; ValueError naming the file."""
  match = _POINT.match(str(text).strip())
  if not match:
    raise ValueError(f'{xml_path}: Point_px {text!r} is not "(x, y)"')
  return [float(match.group(1)), float(match.group(2))]


def roi_shape(points: list[list[float]], width: int, height: int) -> dict | None:
  """A polygon (or a circle for one point) clipped to the image; None if wholly outside."""
  if not points:
    return None
  xy = np.asarray(points, np.float64)
  if (xy[:, 0].max() < 0 or xy[:, 0].min() > width - 1 or xy[:, 1].max() < 0
      or xy[:, 1].min() > height - 1):
    return None
  xy[:, 0] = np.clip(xy[:, 0], 0, width - 1)
  xy[:, 1] = np.clip(xy[:, 1], 0, height - 1)
  if len(xy) == 1:
    return {'shape': 'circle', 'x': float(xy[0, 0]), 'y': float(xy[0, 1]),
            'radius': POINT_RADIUS_PX}
  return {'shape': 'polygon', 'points': xy.tolist()}
