"""Tests of the CBIS-DDSM case-description reader."""

import csv
import os
import pathlib

import cv2
import numpy as np
import pydicom
import pytest

from mammojax.data import image_io
from mammojax.data import records as records_lib
from mammojax.data.sources.cbis_ddsm import read_cbis_ddsm
from mammojax.data.sources.synthetic import ensure_synthetic_cbis_ddsm

MASS_TRAIN_CSV = 'mass_case_description_train_set.csv'
CALC_TEST_CSV = 'calc_case_description_test_set.csv'
HEADER = [
    'patient_id',
    'breast density',
    'left or right breast',
    'image view',
    'abnormality id',
    'abnormality type',
    'mass shape',
    'mass margins',
    'assessment',
    'pathology',
    'subtlety',
    'image file path',
    'cropped image file path',
    'ROI mask file path',
]  # fmt: skip
RECORD_KEYS = {
    'id',
    'image_id',
    'image_path',
    'mask_paths',
    'crop_path',
    'label',
    'pathology',
    'abnormality_type',
    'abnormality_id',
    'patient_id',
    'laterality',
    'view',
    'split',
    'source',
    'class_name',
    'rois',
    'fixed',
}  # fmt: skip


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory) -> pathlib.Path:
  return ensure_synthetic_cbis_ddsm(
      tmp_path_factory.mktemp('synthetic'),
      num_patients=12,
      seed=5,
      image_height=160,
      image_width=128,
  )  # fmt: skip


# ---------------------------------------------------------------- synthetic set


def test_one_record_per_csv_row(synthetic_root):
  records, skipped = read_cbis_ddsm(synthetic_root)
  rows = []
  for csv_path in sorted(synthetic_root.glob('*_case_description_*_set.csv')):
    with open(csv_path, newline='') as handle:
      rows += list(csv.DictReader(handle))
  assert skipped == []
  assert len(records) == len(rows) > 0
  assert len({record['id'] for record in records}) == len(records)
  assert all(set(record) == RECORD_KEYS for record in records)


def test_labels_follow_pathology(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root)
  expected = {'BENIGN': 0, 'BENIGN_WITHOUT_CALLBACK': 0, 'MALIGNANT': 1}
  assert {record['label'] for record in records} == {0, 1}
  for record in records:
    assert record['label'] == expected[record['pathology']]
    assert record['class_name'] == ('malignant' if record['label'] else 'benign')


def test_records_follow_the_record_contract(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root)
  for record in records:
    records_lib.check_record(record)
    assert record['rois'] == [] and record['fixed'] == []  # files used as the CSV says


def test_paths_are_absolute_existing_and_inside_root(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root)
  root = str(synthetic_root.resolve())
  for record in records:
    paths = [record['image_path'], record['crop_path'], *record['mask_paths']]
    assert len(record['mask_paths']) == 1
    for path in paths:
      assert isinstance(path, str) and os.path.isabs(path)
      assert os.path.isfile(path)
      assert os.path.commonpath([os.path.realpath(path), root]) == root


def test_record_fields_agree_with_the_id(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root)
  prefixes = {
      ('mass', 'train'): 'Mass-Training',
      ('mass', 'test'): 'Mass-Test',
      ('calcification', 'train'): 'Calc-Training',
      ('calcification', 'test'): 'Calc-Test',
  }  # fmt: skip
  for record in records:
    image_id = f"{record['patient_id']}_{record['laterality']}_{record['view']}"
    prefix = prefixes[(record['abnormality_type'], record['split'])]
    assert record['image_id'] == image_id
    assert record['id'] == f"{prefix}_{image_id}_{record['abnormality_id']}"
    assert record['source'] == 'cbis_ddsm'
    assert f'{os.sep}{prefix}_{image_id}{os.sep}' in record['image_path']


def test_splits_and_types_can_be_selected(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root, splits=('test',), abnormality_types=('mass',))
  everything, _ = read_cbis_ddsm(synthetic_root)
  assert records
  assert {(r['split'], r['abnormality_type']) for r in records} == {('test', 'mass')}
  assert len(records) < len(everything)


def test_bad_arguments_are_rejected(synthetic_root):
  with pytest.raises(ValueError, match='validation'):
    read_cbis_ddsm(synthetic_root, splits=('validation',))
  with pytest.raises(ValueError, match='sequence'):
    read_cbis_ddsm(synthetic_root, abnormality_types='mass')


# ---------------------------------------------------------------- hand-written fixtures


def write_png(path: pathlib.Path) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), np.full((8, 6), 128, np.uint8))


def write_csv(path: pathlib.Path, header: list[str], rows: list[list]) -> None:
  with open(path, 'w', newline='') as handle:
    writer = csv.writer(handle)
    writer.writerow(header)
    writer.writerows(rows)


def mass_row(patient='P_00001',
             side='LEFT',
             view='CC',
             abnormality_id=1,
             pathology='MALIGNANT',
             image=None,
             crop=None,
             mask=None) -> list:  # fmt: skip
  key = f'Mass-Training_{patient}_{side}_{view}'
  image = f'{key}/full/000000.png' if image is None else image
  crop = f'{key}_{abnormality_id}/roi/000000.png' if crop is None else crop
  mask = f'{key}_{abnormality_id}/roi/000001.png' if mask is None else mask
  return [
      patient, 3, side, view, abnormality_id, 'mass', 'IRREGULAR', 'SPICULATED', 4, pathology, 3,
      image, crop, mask
  ]  # fmt: skip


def write_files_of(root: pathlib.Path, row: list) -> None:
  for relative in row[-3:]:
    write_png(root / relative.strip())


def read_mass_train(root: pathlib.Path):
  return read_cbis_ddsm(root, splits=('train',), abnormality_types=('mass',))


def test_stray_whitespace_and_newlines_are_stripped(tmp_path):
  clean = mass_row()
  write_files_of(tmp_path, clean)
  messy = [f'  {cell}\n' if isinstance(cell, str) else cell for cell in clean]
  messy[-1] = clean[-1] + '\n'  # as in the real CSV: a newline inside the quoted cell
  messy[-3] = clean[-3].replace('/full/', '/full/\r\n')  # even mid-path
  messy[9] = ' MALIGNANT \r\n'
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [messy])
  assert '\n"' in (tmp_path / MASS_TRAIN_CSV).read_text()  # the cell really is multi-line
  records, skipped = read_mass_train(tmp_path)
  assert skipped == []
  (record,) = records
  assert record['id'] == 'Mass-Training_P_00001_LEFT_CC_1'
  assert record['image_id'] == 'P_00001_LEFT_CC'
  assert record['label'] == 1 and record['pathology'] == 'MALIGNANT'
  assert record['mask_paths'] == [str(tmp_path / clean[-1])]
  assert record['image_path'] == str(tmp_path / clean[-3])
  assert record['crop_path'] == str(tmp_path / clean[-2])


def test_column_spellings_are_normalised(tmp_path):
  calc_header = [
      ' Patient_ID', 'breast_density', 'Left or Right Breast ', 'image_view', 'abnormality_id',
      'abnormality type', 'calc type', 'calc distribution', 'assessment', 'PATHOLOGY', 'subtlety',
      'image file path', 'cropped image file path', 'ROI_mask_file_path'
  ]  # fmt: skip
  row = mass_row(pathology='BENIGN_WITHOUT_CALLBACK')
  row[-3:] = [path.replace('Mass-Training', 'Calc-Test') for path in row[-3:]]
  write_files_of(tmp_path, row)
  write_csv(tmp_path / CALC_TEST_CSV, calc_header, [row])
  records, skipped = read_cbis_ddsm(tmp_path,
                                    splits=('test',),
                                    abnormality_types=('calcification',))
  assert skipped == []
  (record,) = records
  assert record['id'] == 'Calc-Test_P_00001_LEFT_CC_1'
  assert (record['label'], record['split']) == (0, 'test')
  assert record['abnormality_type'] == 'calcification'


def test_missing_image_is_skipped_with_its_reason(tmp_path):
  present, absent = mass_row(abnormality_id=1), mass_row(patient='P_00002')
  write_files_of(tmp_path, present)
  write_png(tmp_path / absent[-1])  # mask present, full image absent
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [present, absent])
  records, skipped = read_mass_train(tmp_path)
  assert [record['patient_id'] for record in records] == ['P_00001']
  (skip,) = skipped
  assert skip['file'] == str(tmp_path / MASS_TRAIN_CSV)
  assert skip['row'] == 3  # header is line 1
  assert skip['id'] == 'Mass-Training_P_00002_LEFT_CC_1'
  assert 'image file path' in skip['reason'] and 'not found' in skip['reason']


def test_missing_crop_gives_none(tmp_path):
  row = mass_row()
  write_png(tmp_path / row[-3])
  write_png(tmp_path / row[-1])
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [row])
  records, skipped = read_mass_train(tmp_path)
  assert skipped == [] and records[0]['crop_path'] is None


@pytest.mark.parametrize('escaping', ['../outside.png', '{outside}', 'a/../../outside.png'])
def test_paths_escaping_the_root_are_skipped(tmp_path, escaping):
  root = tmp_path / 'dataset'
  outside = tmp_path / 'outside.png'
  write_png(outside)
  row = mass_row(image=escaping.format(outside=outside))
  write_files_of(root, mass_row())
  write_csv(root / MASS_TRAIN_CSV, HEADER, [row])
  records, skipped = read_mass_train(root)
  assert records == []
  assert len(skipped) == 1 and 'escapes the dataset root' in skipped[0]['reason']


def test_missing_column_names_the_column_and_the_file(tmp_path):
  header = [name for name in HEADER if name != 'pathology']
  write_csv(tmp_path / MASS_TRAIN_CSV, header, [])
  with pytest.raises(ValueError, match='pathology') as error:
    read_mass_train(tmp_path)
  assert MASS_TRAIN_CSV in str(error.value) and 'columns found' in str(error.value)


def test_unknown_pathology_names_file_row_and_allowed_values(tmp_path):
  rows = [mass_row(), mass_row(patient='P_00002', pathology='PROBABLY_FINE')]
  for row in rows:
    write_files_of(tmp_path, row)
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, rows)
  with pytest.raises(ValueError, match='PROBABLY_FINE') as error:
    read_mass_train(tmp_path)
  message = str(error.value)
  assert MASS_TRAIN_CSV in message and 'row 3' in message and 'BENIGN_WITHOUT_CALLBACK' in message


def test_missing_csv_names_the_file_and_the_layout(tmp_path):
  with pytest.raises(FileNotFoundError, match=MASS_TRAIN_CSV) as error:
    read_mass_train(tmp_path)
  assert 'layout' in str(error.value)


def test_duplicate_ids_are_rejected(tmp_path):
  row = mass_row()
  write_files_of(tmp_path, row)
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [row, row])
  with pytest.raises(ValueError, match='Mass-Training_P_00001_LEFT_CC_1'):
    read_mass_train(tmp_path)


# ---------------------------------------------------------------- TCIA download layout

FULL_SHAPE = (64, 48)
CASE = 'Mass-Training_P_00001_LEFT_CC'
UID = '1.3.6.1.4.1.9590.100.1.2.'
# The CSV cells of a TCIA download: UID folders that do not exist on disk.
TCIA_CELLS = (f'{CASE}/{UID}4221127/{UID}3423861/000000.dcm',
              f'{CASE}_1/{UID}1594437/{UID}2148693/000000.dcm',
              f'{CASE}_1/{UID}1594437/{UID}2148693/000001.dcm')
FULL_SERIES = f'{CASE}/07-20-2016-DDSM-74994/1.000000-full mammogram images-24515'
ROI_STUDY = f'{CASE}_1/07-21-2016-DDSM-22101'


def gradient(shape) -> np.ndarray:
  """A non-binary image, like a mammogram or a crop."""
  return np.arange(shape[0] * shape[1], dtype=np.uint16).reshape(shape) * 7 % 4000 + 1


def binary_mask(shape) -> np.ndarray:
  mask = np.zeros(shape, np.uint16)
  mask[20:40, 10:30] = 65535
  return mask


def write_dicom(path: pathlib.Path, pixels: np.ndarray, description: str = '') -> None:
  """A minimal 16-bit grayscale DICOM file, as the TCIA download holds."""
  path.parent.mkdir(parents=True, exist_ok=True)
  meta = pydicom.dataset.FileMetaDataset()
  meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
  meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
  meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
  dataset = pydicom.dataset.FileDataset(str(path), {}, file_meta=meta, preamble=b'\0' * 128)
  dataset.Rows, dataset.Columns = pixels.shape
  dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, 'MONOCHROME2'
  dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
  dataset.PixelRepresentation = 0
  dataset.PixelData = pixels.astype(np.uint16).tobytes()
  if description:
    dataset.SeriesDescription = description
  dataset.save_as(str(path), enforce_file_format=True)


def write_image(path: pathlib.Path, pixels: np.ndarray, description: str = '') -> None:
  """DICOM or, for a '.png' path, the PNG conversion of it."""
  if path.suffix == '.png':
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)
  else:
    write_dicom(path, pixels, description)


def write_tcia_case(root: pathlib.Path, roi_files: dict, *, suffix='.dcm') -> None:
  """The CSV with UID cells, and a case laid out as the NBIA retriever writes it.

  ``roi_files`` maps a path under the abnormality's study folder to (pixels,
  SeriesDescription).
  """
  root.mkdir(parents=True, exist_ok=True)
  write_csv(root / MASS_TRAIN_CSV, HEADER, [mass_row(image=TCIA_CELLS[0],
                                                     crop=TCIA_CELLS[1], mask=TCIA_CELLS[2])])
  write_image(root / 'CBIS-DDSM' / FULL_SERIES / f'1-1{suffix}', gradient(FULL_SHAPE),
              'full mammogram images')
  for relative, (pixels, description) in roi_files.items():
    write_image(root / 'CBIS-DDSM' / ROI_STUDY / f'{relative}{suffix}', pixels, description)


def read_one(root: pathlib.Path) -> dict:
  records, skipped = read_mass_train(root)
  assert skipped == []
  (record,) = records
  records_lib.check_record(record)
  return record


def relative_to(root: pathlib.Path, path: str) -> str:
  return pathlib.Path(path).relative_to(root / 'CBIS-DDSM').as_posix()


def test_tcia_separate_series_are_told_apart_by_description_alone(tmp_path, monkeypatch):
  # Names on purpose against the usual order: the mask is 1-2, the crop 1-1.
  write_tcia_case(tmp_path, {
      '1.000000-ROI mask images-31902/1-2': (binary_mask(FULL_SHAPE), 'ROI mask images'),
      '1.000000-cropped images-10245/1-1': (gradient((16, 12)), 'cropped images'),
  })
  def no_pixels(path):
    raise AssertionError(f'pixels of {path} were read; the headers suffice')
  monkeypatch.setattr('mammojax.data.sources.cbis_ddsm_files.image_io.load_grayscale', no_pixels)
  record = read_one(tmp_path)
  assert relative_to(tmp_path, record['image_path']) == f'{FULL_SERIES}/1-1.dcm'
  assert relative_to(tmp_path, record['mask_paths'][0]) == (
      f'{ROI_STUDY}/1.000000-ROI mask images-31902/1-2.dcm')
  assert relative_to(tmp_path, record['crop_path']) == (
      f'{ROI_STUDY}/1.000000-cropped images-10245/1-1.dcm')
  assert record['fixed'] == ['paths resolved in the TCIA download folders']
  assert (record['class_name'], record['id']) == ('malignant', f'{CASE}_1')


@pytest.mark.parametrize('mask_name', ['1-1', '1-2'])
def test_tcia_one_series_is_told_apart_by_size(tmp_path, monkeypatch, mask_name):
  # Both files say 'ROI mask images': the size in the header tells them apart.
  crop_name = {'1-1': '1-2', '1-2': '1-1'}[mask_name]
  series = '1.000000-ROI mask images-31902'
  write_tcia_case(tmp_path, {
      f'{series}/{mask_name}': (binary_mask(FULL_SHAPE), 'ROI mask images'),
      f'{series}/{crop_name}': (gradient((16, 12)), 'ROI mask images'),
  })
  pixels_read, original = [], image_io.load_grayscale
  def load_grayscale(path):
    pixels_read.append(pathlib.Path(path).name)
    return original(path)
  monkeypatch.setattr('mammojax.data.sources.cbis_ddsm_files.image_io.load_grayscale',
                      load_grayscale)
  record = read_one(tmp_path)
  assert record['mask_paths'][0].endswith(f'{series}/{mask_name}.dcm')
  assert record['crop_path'].endswith(f'{series}/{crop_name}.dcm')
  assert pixels_read == [f'{crop_name}.dcm']  # the small crop only, never the full-size mask


def test_tcia_mask_of_another_size_is_found_by_its_pixels(tmp_path):
  # No descriptions, and a mask 2 rows shorter than its image (a real quirk).
  write_tcia_case(tmp_path, {
      'series/1-1': (gradient((16, 12)), ''),
      'series/1-2': (binary_mask((62, 48)), ''),
  })
  record = read_one(tmp_path)
  assert record['mask_paths'][0].endswith('series/1-2.dcm')
  assert record['crop_path'].endswith('series/1-1.dcm')


def test_tcia_png_conversion_and_case_folders_in_root(tmp_path):
  write_tcia_case(tmp_path / 'download', {
      'series/1-1': (binary_mask(FULL_SHAPE).astype(np.uint8), ''),
      'series/1-2': (gradient((16, 12)).astype(np.uint8), ''),
  }, suffix='.png')
  (tmp_path / 'download' / 'CBIS-DDSM').rename(tmp_path / 'root')
  (tmp_path / 'download' / MASS_TRAIN_CSV).rename(tmp_path / 'root' / MASS_TRAIN_CSV)
  records, skipped = read_mass_train(tmp_path / 'root')
  assert skipped == []
  (record,) = records
  assert record['image_path'] == str(tmp_path / 'root' / FULL_SERIES / '1-1.png')
  assert record['mask_paths'] == [str(tmp_path / 'root' / ROI_STUDY / 'series/1-1.png')]
  assert image_io.load_grayscale(record['mask_paths'][0]).shape == FULL_SHAPE


def test_tcia_files_read_as_images(tmp_path):
  write_tcia_case(tmp_path, {
      'a/1-1': (binary_mask(FULL_SHAPE), 'ROI mask images'),
      'b/1-1': (gradient((16, 12)), 'cropped images'),
  })
  record = read_one(tmp_path)
  image = image_io.load_grayscale(record['image_path'])
  mask = image_io.load_mask(record['mask_paths'][0])
  assert image.shape == mask.shape == FULL_SHAPE
  assert mask.sum() == 20 * 20


def test_tcia_case_without_mask_is_skipped_naming_the_folder(tmp_path):
  write_tcia_case(tmp_path, {'series/1-1': (gradient((16, 12)), 'cropped images')})
  records, skipped = read_mass_train(tmp_path)
  assert records == []
  (skip,) = skipped
  assert 'roi mask file path' in skip['reason'] and '0 ROI masks' in skip['reason']
  assert str(tmp_path / 'CBIS-DDSM' / f'{CASE}_1') in skip['reason']


def test_missing_case_folder_names_both_places_searched(tmp_path):
  write_tcia_case(tmp_path, {})
  records, skipped = read_mass_train(tmp_path)
  assert records == []
  assert f"case folder '{CASE}_1'" in skipped[0]['reason']
  assert str(tmp_path / 'CBIS-DDSM') in skipped[0]['reason']


@pytest.mark.parametrize('suffix', ['.png', '.dcm'])
def test_swapped_crop_and_mask_columns_are_swapped_back(tmp_path, suffix):
  swapped, normal = mass_row(abnormality_id=1), mass_row(abnormality_id=2)
  for row in (swapped, normal):
    row[-3:] = [cell.replace('.png', suffix) for cell in row[-3:]]
    write_image(tmp_path / row[-3], gradient(FULL_SHAPE))
  crop, mask = gradient((16, 12)), binary_mask(FULL_SHAPE)
  write_image(tmp_path / swapped[-2], mask)  # the 'cropped image' cell names the mask
  write_image(tmp_path / swapped[-1], crop)
  write_image(tmp_path / normal[-2], crop)
  write_image(tmp_path / normal[-1], mask)
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [swapped, normal])
  records, skipped = read_mass_train(tmp_path)
  assert skipped == []
  by_id = {record['abnormality_id']: record for record in records}
  assert by_id[1]['mask_paths'] == [str(tmp_path / swapped[-2])]
  assert by_id[1]['crop_path'] == str(tmp_path / swapped[-1])
  assert by_id[1]['fixed'] == ['swapped crop/mask columns']
  assert by_id[2]['mask_paths'] == [str(tmp_path / normal[-1])] and by_id[2]['fixed'] == []


def test_mask_cell_that_is_no_mask_is_skipped(tmp_path):
  row = mass_row()
  write_image(tmp_path / row[-3], gradient(FULL_SHAPE).astype(np.uint8))
  write_image(tmp_path / row[-1], gradient((16, 12)).astype(np.uint8))
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [row])
  records, skipped = read_mass_train(tmp_path)
  assert records == []
  assert 'not a binary mask' in skipped[0]['reason'] and row[-1] in skipped[0]['reason']
