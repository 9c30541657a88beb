"""Reader of the MIAS (mini-MIAS) download: ``Info.txt`` and ``mdbNNN.pgm`` images.

Layout (as unpacked from the MIAS site or the common Kaggle copy)::

    root/
      Info.txt (or info.txt)    one data row per abnormality
      mdb001.pgm ... mdb322.pgm 1024x1024 8-bit PGM, here or in root/all-mias/

Data rows are ``REFNUM BG CLASS SEVERITY X Y RADIUS``::

    mdb001 G CIRC B 535 425 197    an abnormality with its circle
    mdb003 D NORM                  a normal image
    mdb059 F CIRC B                an abnormality without coordinates

Lines before the first data row (the ``REFNUM BG ...`` column header or the
README text some copies carry), blank lines and ``#`` comments are not rows.

Rules worth knowing:
- X, Y are measured from the BOTTOM-left corner of the image; the records use
  the house convention (y DOWN from the top-left corner), so
  ``y_row = height - 1 - Y`` with the height read from each image.
- One record per data row: an image with two masses gives ``mias_mdb005_1``
  and ``mias_mdb005_2``, each with its own class and its circle in ``rois``.
- Abnormal rows without coordinates are KEPT as whole-image records with
  ``roi_missing=True``. The MIAS README (note 4) leaves the circle out for
  calcifications spread over the whole breast, where a centre and radius do
  not apply (a few masses, e.g. mdb059, lack it too). The image-level label
  (benign/malignant) is still valid and MIAS, with about 115 abnormal images,
  cannot spare them; but ROI-based steps (patches, masks) must not read the
  missing ROI as "no lesion here": the flag tells them.
- Unknown codes, malformed numbers and duplicate rows stop the reader with a
  ValueError naming Info.txt and the line (a silent mistake would corrupt the
  labels); a missing or unreadable image only skips its rows, with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re

from mammojax.data import image_io, records as records_lib

SOURCE_NAME = 'mias'
INFO_FILE_NAMES = ('Info.txt', 'info.txt', 'INFO.TXT')
IMAGE_DIRS = ('.', 'all-mias')
BACKGROUND_TISSUES = {'F': 'fatty', 'G': 'fatty-glandular', 'D': 'dense-glandular'}
ABNORMALITY_CLASSES = {
    'CALC': 'calcification',
    'CIRC': 'well-defined/circumscribed mass',
    'SPIC': 'spiculated mass',
    'MISC': 'other, ill-defined mass',
    'ARCH': 'architectural distortion',
    'ASYM': 'asymmetry',
    'NORM': 'normal',
}
SEVERITIES = {'B': 'benign', 'M': 'malignant'}
# MIAS films are all medio-lateral oblique views.
VIEW = 'MLO'

_REFNUM = re.compile(r'^mdb(\d+)$', re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class InfoRow:
  """One data row of Info.txt; x, y, radius are None when the row has no coordinates."""
  line: int
  refnum: str
  background: str
  abnormality: str
  severity: str | None
  x: int | None
  y: int | None
  radius: int | None


def read_mias(root: str | os.PathLike) -> tuple[list[dict], list[dict]]:
  """Reads a MIAS download (``Info.txt`` + ``mdbNNN.pgm``) into records.

  Args:
    root: the folder holding Info.txt; images are looked for in ``root`` and
      ``root/all-mias``.

  Returns:
    ``(records, skipped)``: one record per data row (see the module
    docstring) with the required record keys plus laterality, view,
    background_tissue ('F', 'G', 'D'), abnormality_class ('CIRC', 'NORM', ...),
    severity ('B', 'M' or None) and roi_missing; ``skipped`` holds
    ``{'file', 'row', 'id', 'reason'}`` for rows whose image is missing or
    unreadable, or whose circle centre lies outside the image.

  Raises:
    FileNotFoundError: no Info.txt in ``root``.
    ValueError: a malformed, unknown or duplicate row, naming Info.txt and the line.
  """
  root = pathlib.Path(os.path.abspath(root))
  info_path = find_info_file(root)
  rows = parse_info_file(info_path)
  records, skipped, heights = [], [], {}
  counts: dict[str, int] = {}
  for row in rows:
    counts[row.refnum] = counts.get(row.refnum, 0) + 1
    record_id = f'{SOURCE_NAME}_{row.refnum}_{counts[row.refnum]}'
    image_path = find_image(root, row.refnum)
    try:
      if image_path is None:
        raise ValueError(f'image {row.refnum}.pgm not found in {root} or {root / "all-mias"}')
      if image_path not in heights:
        heights[image_path] = image_io.load_grayscale(image_path).shape
      records.append(row_to_record(row, record_id, image_path, heights[image_path]))
    except ValueError as reason:
      skipped.append({'file': str(image_path or info_path), 'row': row.line, 'id': record_id,
                      'reason': str(reason)})
  for record in records:
    records_lib.check_record(record)
  return records, skipped


def find_info_file(root: pathlib.Path) -> pathlib.Path:
  """The Info.txt of a MIAS download, or FileNotFoundError saying what is expected."""
  for name in INFO_FILE_NAMES:
    if (root / name).is_file():
      return root / name
  raise FileNotFoundError(f'MIAS Info.txt not found in {root}. Point the reader at the folder '
                          'holding Info.txt (rows "REFNUM BG CLASS SEVERITY X Y RADIUS") and '
                          'the mdbNNN.pgm images.')


def find_image(root: pathlib.Path, refnum: str) -> str | None:
  """Absolute path of ``<refnum>.pgm`` in root or root/all-mias, None if absent."""
  for folder in IMAGE_DIRS:
    path = records_lib.path_inside(root, f'{folder}/{refnum}.pgm')
    if os.path.isfile(path):
      return path
  return None


def parse_info_file(info_path: pathlib.Path) -> list[InfoRow]:
  """All data rows of Info.txt, in file order; ValueError naming the line on bad ones."""
  rows, seen, started = [], {}, False
  # utf-8-sig with replacement: the README text some copies carry is not
  # ASCII everywhere, and it never reaches a record.
  with open(info_path, encoding='utf-8-sig', errors='replace') as handle:
    for line_number, text in enumerate(handle, start=1):
      tokens = text.split()
      if not tokens or tokens[0].startswith('#') or tokens[0].upper() == 'REFNUM':
        continue
      if not _REFNUM.match(tokens[0]):
        if started:  # a typo in a data row must not vanish as "header text"
          raise ValueError(f'{info_path}: line {line_number}: {text.strip()!r} is not a MIAS '
                           'data row (expected "mdbNNN BG CLASS [SEVERITY [X Y RADIUS]]").')
        continue
      started = True
      row = parse_info_row(tokens, info_path, line_number)
      key = (row.refnum, row.background, row.abnormality, row.severity, row.x, row.y, row.radius)
      if key in seen:
        raise ValueError(f'{info_path}: line {line_number} repeats line {seen[key]} '
                         f'({text.strip()!r}); remove the duplicate row.')
      seen[key] = line_number
      rows.append(row)
  return rows


def parse_info_row(tokens: list[str], info_path: pathlib.Path, line_number: int) -> InfoRow:
  """One data row from its whitespace-separated tokens; ValueError naming the line."""

  def fail(message: str) -> ValueError:
    return ValueError(f'{info_path}: line {line_number} ({" ".join(tokens)!r}): {message}')

  refnum = tokens[0].lower()
  # The original MIAS truth file writes notes such as '*** see note 2' where
  # the coordinates were left out: a note is not coordinates.
  fields = [token.upper() for token in _strip_note(tokens[1:])]
  if len(fields) < 2:
    raise fail('expected at least REFNUM BG CLASS.')
  background, abnormality = fields[0], fields[1]
  if background not in BACKGROUND_TISSUES:
    raise fail(f'unknown background tissue {background!r}; valid: {list(BACKGROUND_TISSUES)}.')
  if abnormality not in ABNORMALITY_CLASSES:
    raise fail(f'unknown abnormality class {abnormality!r}; valid: {list(ABNORMALITY_CLASSES)}.')
  if abnormality == 'NORM':
    if len(fields) != 2:
      raise fail('a NORM row has no severity or coordinates.')
    return InfoRow(line_number, refnum, background, abnormality, None, None, None, None)
  if len(fields) < 3 or fields[2] not in SEVERITIES:
    given = fields[2] if len(fields) > 2 else 'nothing'
    raise fail(f'severity must be one of {list(SEVERITIES)} for class {abnormality}; '
               f'got {given!r}.')
  coordinates = fields[3:]
  if len(coordinates) not in (0, 3):
    raise fail('expected X Y RADIUS (three integers) or no coordinates at all.')
  try:
    x, y, radius = (int(value) for value in coordinates) if coordinates else (None,) * 3
  except ValueError:
    raise fail(f'X Y RADIUS must be integers; got {" ".join(coordinates)!r}.') from None
  if radius is not None and (x < 0 or y < 0 or radius <= 0):
    raise fail('X and Y must be >= 0 and RADIUS > 0.')
  return InfoRow(line_number, refnum, background, abnormality, fields[2], x, y, radius)


def _strip_note(tokens: list[str]) -> list[str]:
  """Tokens before the first one that starts with '*' (an annotator's note)."""
  for index, token in enumerate(tokens):
    if token.startswith('*'):
      return tokens[:index]
  return tokens


def patient_number(refnum: str) -> int:
  """MIAS pairs consecutive images as the two breasts of one woman: mdb001+mdb002 -> 1."""
  return (int(_REFNUM.match(refnum).group(1)) + 1) // 2


def laterality_of(refnum: str) -> str:
  """'LEFT' for odd numbers, 'RIGHT' for even ones.

  Info.txt does not say; the original 50-micron MIAS file names did
  (mdb001lm, mdb002rl: 'l'/'r' = left/right), and the mini-MIAS numbers keep
  that order. Check a few images before relying on it for side-specific work.
  """
  return 'LEFT' if int(_REFNUM.match(refnum).group(1)) % 2 == 1 else 'RIGHT'


def row_to_record(row: InfoRow, record_id: str, image_path: str, shape: tuple[int, ...]) -> dict:
  """The record of one Info.txt row; ValueError (a skip reason) if its circle is off the image."""
  height, width = shape[:2]
  rois = []
  if row.radius is not None:
    y_row = height - 1 - row.y  # Info.txt measures Y up from the bottom-left corner
    if not (0 <= row.x < width and 0 <= y_row < height):
      raise ValueError(f'circle centre X={row.x} Y={row.y} lies outside the {width}x{height} '
                       f'image {image_path}')
    rois.append({'shape': 'circle', 'x': row.x, 'y': y_row, 'radius': row.radius})
  return {
      'id': record_id,
      'image_id': row.refnum,
      'image_path': image_path,
      'class_name': 'normal' if row.severity is None else SEVERITIES[row.severity],
      'patient_id': f'{SOURCE_NAME}_{patient_number(row.refnum):03d}',
      'source': SOURCE_NAME,
      'split': '',  # MIAS has no official split
      'mask_paths': [],
      'rois': rois,
      'roi_missing': row.severity is not None and row.radius is None,
      'laterality': laterality_of(row.refnum),
      'view': VIEW,
      'background_tissue': row.background,
      'abnormality_class': row.abnormality,
      'severity': row.severity,
  }
