"""Tests of the MIAS reader on tiny PGM images and an Info.txt with the real quirks."""

import pathlib

import cv2
import numpy as np
import pytest

from mammojax.data import records
from mammojax.data.sources import mias

# Drawn discs: refnum -> (height, width, [(x, y_row, radius), ...]) in top-left coordinates.
IMAGES = {
    'mdb001': (64, 64, [(20, 23, 6)]),
    'mdb002': (64, 64, []),
    'mdb005': (80, 48, [(12, 15, 5), (34, 60, 7)]),  # non-square: the flip needs the height
    'mdb006': (64, 64, []),
}


def bottom_y(refnum: str, index: int) -> int:
  """The Info.txt Y (from the bottom-left corner) of a drawn disc."""
  height, _, discs = IMAGES[refnum]
  return height - 1 - discs[index][1]


def circle_row(refnum: str, index: int, background='G', abnormality='CIRC', severity='B') -> str:
  x, _, radius = IMAGES[refnum][2][index]
  return f'{refnum} {background} {abnormality} {severity} {x} {bottom_y(refnum, index)} {radius}'


def write_pgm(path: pathlib.Path, height: int, width: int, discs: list) -> None:
  image = np.full((height, width), 30, np.uint8)
  for x, y, radius in discs:
    cv2.circle(image, (x, y), radius, 255, thickness=-1)
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), image)


def write_images(folder: pathlib.Path) -> None:
  for refnum, (height, width, discs) in IMAGES.items():
    write_pgm(folder / f'{refnum}.pgm', height, width, discs)


def write_info(root: pathlib.Path, lines: list[str], name='Info.txt') -> pathlib.Path:
  path = root / name
  path.write_text('\n'.join(lines) + '\n')
  return path


def info_lines() -> list[str]:
  """Every quirk of the real file: README text, column header, blank and comment
  lines, several rows per image, NORM rows, a row without coordinates, trailing spaces."""
  return [
      'MAMMOGRAPHIC IMAGE ANALYSIS SOCIETY MiniMammographic Database',
      '',
      'REFNUM BG CLASS SEVERITY X Y RADIUS ',
      circle_row('mdb001', 0),
      'mdb002 G NORM ',
      '# a comment between rows',
      circle_row('mdb005', 0, background='F'),
      circle_row('mdb005', 1, background='F', abnormality='SPIC', severity='M'),
      '',
      'mdb006 D CALC M',
  ]


@pytest.fixture(name='root')
def fixture_root(tmp_path) -> pathlib.Path:
  write_images(tmp_path)
  write_info(tmp_path, info_lines())
  return tmp_path


def by_id(root) -> dict:
  found, skipped = mias.read_mias(root)
  assert skipped == []
  return {record['id']: record for record in found}


def test_one_record_per_data_row(root):
  found = by_id(root)
  assert list(found) == ['mias_mdb001_1', 'mias_mdb002_1', 'mias_mdb005_1', 'mias_mdb005_2',
                         'mias_mdb006_1']
  for record in found.values():
    records.check_record(record)
    assert record['source'] == 'mias' and record['split'] == '' and record['mask_paths'] == []
    assert record['image_path'] == str(root / f'{record["image_id"]}.pgm')
  assert [found[key]['class_name'] for key in found] == [
      'benign', 'normal', 'benign', 'malignant', 'malignant']
  assert found['mias_mdb005_2']['abnormality_class'] == 'SPIC'
  assert found['mias_mdb005_2']['background_tissue'] == 'F'
  assert found['mias_mdb002_1']['severity'] is None and found['mias_mdb002_1']['rois'] == []


def test_y_is_measured_from_the_bottom(root):
  found = by_id(root)
  assert found['mias_mdb001_1']['rois'] == [{'shape': 'circle', 'x': 20, 'y': 23, 'radius': 6}]
  # 80 rows high, not 1024 and not the width: Y=64 is row 15, Y=19 is row 60.
  assert found['mias_mdb005_1']['rois'][0]['y'] == 15
  assert found['mias_mdb005_2']['rois'][0]['y'] == 60


@pytest.mark.parametrize('record_id, refnum, index', [
    ('mias_mdb001_1', 'mdb001', 0), ('mias_mdb005_1', 'mdb005', 0), ('mias_mdb005_2', 'mdb005', 1)])
def test_rendered_roi_covers_the_drawn_disc(root, record_id, refnum, index):
  record = by_id(root)[record_id]
  image = cv2.imread(record['image_path'], cv2.IMREAD_GRAYSCALE)
  mask = records.render_rois(record['rois'], image.shape)
  height, width, discs = IMAGES[refnum]
  disc = np.zeros((height, width), np.uint8)
  x, y, radius = discs[index]
  cv2.circle(disc, (x, y), radius, 1, thickness=-1)
  assert mask.shape == (height, width)
  assert np.all(image[mask == 1] == 255)  # the ROI lies on the bright disc ...
  assert np.array_equal(mask, disc)  # ... and is exactly that disc, not the other one


def test_row_without_coordinates_is_a_flagged_whole_image_record(root):
  found = by_id(root)
  calc = found['mias_mdb006_1']
  assert calc['rois'] == [] and calc['roi_missing'] is True
  assert calc['class_name'] == 'malignant' and calc['abnormality_class'] == 'CALC'
  assert not records.has_roi(calc)
  assert [key for key, record in found.items() if record['roi_missing']] == ['mias_mdb006_1']


def test_patients_pair_consecutive_images_and_odd_is_left(root):
  found = by_id(root)
  assert found['mias_mdb001_1']['patient_id'] == found['mias_mdb002_1']['patient_id'] == 'mias_001'
  assert found['mias_mdb005_1']['patient_id'] == found['mias_mdb006_1']['patient_id'] == 'mias_003'
  assert found['mias_mdb001_1']['laterality'] == 'LEFT'
  assert found['mias_mdb002_1']['laterality'] == 'RIGHT'
  assert {record['view'] for record in found.values()} == {'MLO'}
  assert mias.patient_number('mdb322') == 161 and mias.patient_number('mdb321') == 161


def test_lower_case_info_and_all_mias_folder(tmp_path):
  write_images(tmp_path / 'all-mias')
  write_info(tmp_path, info_lines(), name='info.txt')
  found = by_id(tmp_path)
  assert len(found) == 5
  assert found['mias_mdb001_1']['image_path'] == str(tmp_path / 'all-mias' / 'mdb001.pgm')


def test_missing_image_is_skipped_with_its_reason(root):
  write_info(root, info_lines() + ['mdb009 F NORM'])
  found, skipped = mias.read_mias(root)
  assert len(found) == 5
  (skip,) = skipped
  assert skip['id'] == 'mias_mdb009_1' and skip['row'] == 11
  assert skip['file'] == str(root / 'Info.txt')
  assert 'mdb009.pgm not found' in skip['reason']


def test_unreadable_image_is_skipped_naming_the_file(root):
  (root / 'mdb002.pgm').write_bytes(b'P5 not really an image')
  found, skipped = mias.read_mias(root)
  assert 'mias_mdb002_1' not in {record['id'] for record in found}
  (skip,) = skipped
  assert skip['file'] == str(root / 'mdb002.pgm') and 'mdb002.pgm' in skip['reason']


def test_centre_outside_the_image_is_skipped(root):
  write_info(root, info_lines() + ['mdb002 G CIRC B 70 10 5'])
  found, skipped = mias.read_mias(root)
  assert len(found) == 5
  assert skipped[0]['id'] == 'mias_mdb002_2' and 'outside the 64x64 image' in skipped[0]['reason']


def test_annotator_note_means_no_coordinates(root):
  write_info(root, info_lines()[:-1] + ['mdb006 D CALC M *** see note 2'])
  assert by_id(root)['mias_mdb006_1']['roi_missing'] is True


@pytest.mark.parametrize('bad_row, words', [
    ('mdb002 G BLOB B 1 2 3', ['BLOB', 'CIRC']),  # unknown class, valid ones listed
    ('mdb002 G CIRC X 1 2 3', ["'X'", 'severity']),  # unknown severity
    ('mdb002 Q NORM', ['background', "'Q'"]),  # unknown background tissue
    ('mdb002 G CIRC', ['severity']),  # missing severity
    ('mdb002 G CIRC B 12 4O 5', ['integers', '4O']),  # malformed number (letter O)
    ('mdb002 G CIRC B 12 40', ['X Y RADIUS']),  # radius missing
    ('mdb002 G NORM B', ['NORM row has no severity']),
    ('mdb02x G NORM', ['not a MIAS data row']),  # typo in the reference number
])
def test_bad_rows_name_info_txt_and_the_line(root, bad_row, words):
  lines = info_lines()
  lines[4] = bad_row  # line 5 of the file
  write_info(root, lines)
  with pytest.raises(ValueError) as error:
    mias.read_mias(root)
  message = str(error.value)
  assert str(root / 'Info.txt') in message and 'line 5' in message
  for word in words:
    assert word in message


def test_duplicate_row_is_rejected_naming_both_lines(root):
  write_info(root, info_lines() + [circle_row('mdb001', 0)])
  with pytest.raises(ValueError, match='line 11 repeats line 4'):
    mias.read_mias(root)


def test_missing_info_txt_says_what_is_expected(tmp_path):
  write_images(tmp_path)
  with pytest.raises(FileNotFoundError, match='Info.txt') as error:
    mias.read_mias(tmp_path)
  assert str(tmp_path) in str(error.value) and 'mdbNNN.pgm' in str(error.value)
