"""Tests of the INbreast reader on tiny DICOMs, OsiriX XML plists and an INbreast.csv."""

import pathlib
import plistlib

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mammojax.data import image_io, records
from mammojax.data.sources import inbreast

HEIGHT, WIDTH = 48, 64
HEADER = 'Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads'
MASS = [(10.5, 8.0), (30.0, 8.0), (30.0, 28.25), (10.5, 28.25)]
# Each image: (DICOM file name, Bi-Rads, ROIs in its XML or None for no XML).
IMAGES = {
    '22678622': ('22678622_6c613a14b80a8591_MG_R_CC_ANON.dcm', '4c',
                 [('Mass', MASS), ('Calcification', [(40.0, 20.0)]),
                  ('Mass', [(-5.0, 40.0), (70.0, 40.0), (70.0, 60.0)])]),
    '22678623': ('22678623_6c613a14b80a8591_MG_L_ML_ANON.dcm', '2', None),
    '22678624': ('22678624_0a1b2c3d4e5f6789_MG_L_CC_ANON.dcm', '1',
                 [('Cluster', [(5.0, 5.0), (9.0, 5.0), (9.0, 9.0)]),
                  ('Mass', [(80.0, 60.0), (90.0, 70.0), (85.0, 90.0)])]),
    '22678625': ('22678625_0a1b2c3d4e5f6789_MG_R_ML_ANON.dcm', '4a', [('Mass', MASS)]),
}


def write_dicom(path: pathlib.Path, pixels: np.ndarray, photometric='MONOCHROME2',
                bits_stored=16) -> None:
  """A minimal mammography DICOM file (16-bit allocated, unsigned, one frame)."""
  meta = FileMetaDataset()
  meta.MediaStorageSOPClassUID = pydicom.uid.DigitalMammographyXRayImageStorageForPresentation
  meta.MediaStorageSOPInstanceUID = generate_uid()
  meta.TransferSyntaxUID = ExplicitVRLittleEndian
  dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b'\0' * 128)
  dataset.SOPClassUID = meta.MediaStorageSOPClassUID
  dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
  dataset.Modality = 'MG'
  dataset.Rows, dataset.Columns = pixels.shape
  dataset.SamplesPerPixel = 1
  dataset.PhotometricInterpretation = photometric
  dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
  dataset.PixelRepresentation = 0
  dataset.PixelData = pixels.astype('<u2').tobytes()
  path.parent.mkdir(parents=True, exist_ok=True)
  dataset.save_as(path, enforce_file_format=True)


def write_osirix_xml(path: pathlib.Path, rois: list) -> None:
  """The OsiriX ROI export structure: Images -> [ {ROIs -> [ {Name, Point_px, ...} ]} ]."""
  entries = [{
      'Name': name,
      'NumberOfPoints': len(points),
      'Point_px': [f'({x}, {y})' for x, y in points],
      'Point_mm': [f'({x * 0.07}, {y * 0.07}, 0)' for x, y in points],
      'IndexInImage': index,
      'Type': 19 if len(points) == 1 else 15,
  } for index, (name, points) in enumerate(rois)]
  plist = {'Images': [{'ImageIndex': 0, 'NumberOfROIs': len(entries), 'ROIs': entries}]}
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'wb') as handle:
    plistlib.dump(plist, handle, fmt=plistlib.FMT_XML)


def write_csv(root: pathlib.Path, rows: list[tuple[str, str]]) -> pathlib.Path:
  """INbreast.csv with (file id, Bi-Rads) rows; the other cells as in the public release."""
  lines = [HEADER] + [f'removed;removed;R;CC;201001;{file_id};2;{birads}'
                      for file_id, birads in rows]
  path = root / 'INbreast.csv'
  path.write_text('\n'.join(lines) + '\n')
  return path


def gradient() -> np.ndarray:
  return (np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) * 16).astype(np.uint16)


@pytest.fixture(name='root')
def fixture_root(tmp_path) -> pathlib.Path:
  for file_id, (name, birads, rois) in IMAGES.items():
    write_dicom(tmp_path / 'AllDICOMs' / name, gradient())
    if rois is not None:
      write_osirix_xml(tmp_path / 'AllXML' / f'{file_id}.xml', rois)
  write_csv(tmp_path, [(file_id, birads) for file_id, (_, birads, _) in IMAGES.items()])
  return tmp_path


def read(root, **kwargs) -> tuple[dict, list]:
  found, skipped = inbreast.read_inbreast(root, **kwargs)
  return {record['image_id']: record for record in found}, skipped


def test_one_record_per_image_with_its_fields(root):
  found, _ = read(root)
  assert list(found) == list(IMAGES)
  for file_id, record in found.items():
    records.check_record(record)
    assert record['id'] == f'inbreast_{file_id}'
    assert record['image_path'] == str(root / 'AllDICOMs' / IMAGES[file_id][0])
    assert (record['source'], record['split'], record['mask_paths']) == ('inbreast', '', [])
    assert record['image_size'] == (HEIGHT, WIDTH) and record['acr'] == '2'
  first, second = found['22678622'], found['22678623']
  assert first['patient_id'] == second['patient_id'] == '6c613a14b80a8591'
  assert found['22678624']['patient_id'] == '0a1b2c3d4e5f6789'
  assert (first['laterality'], first['view']) == ('RIGHT', 'CC')
  assert (second['laterality'], second['view']) == ('LEFT', 'MLO')  # 'ML' in the file name


def test_birads_gives_the_class(root):
  found, _ = read(root)
  assert {key: (r['birads'], r['class_name']) for key, r in found.items()} == {
      '22678622': ('4c', 'malignant'), '22678623': ('2', 'benign'),
      '22678624': ('1', 'benign'), '22678625': ('4a', 'malignant')}
  stricter, _ = read(root, birads_threshold='4b')
  assert stricter['22678625']['class_name'] == 'benign'
  assert stricter['22678622']['class_name'] == 'malignant'


@pytest.mark.parametrize('birads, threshold, expected', [
    ('1', '4', 'benign'), ('3', '4', 'benign'), ('4a', '4', 'malignant'), ('4B', '4', 'malignant'),
    ('5', '4', 'malignant'), ('6', '4', 'malignant'), ('4', '4', 'malignant'),
    ('4a', '4b', 'benign'), ('3', '3', 'malignant'), (' 2 ', '4', 'benign')])
def test_birads_class_mapping(birads, threshold, expected):
  assert inbreast.birads_class(birads, threshold) == expected


def test_mass_polygons_are_the_rois(root):
  found, _ = read(root)
  rois = found['22678622']['rois']
  assert rois[0] == {'shape': 'polygon', 'points': [list(point) for point in MASS]}
  assert len(rois) == 2  # the calcification is not a lesion type asked for
  assert found['22678622']['roi_names'] == ['Calcification', 'Mass']
  assert found['22678623']['rois'] == [] and found['22678623']['roi_names'] == []
  assert not records.has_roi(found['22678623'])  # no XML: a whole-image record
  mask = records.render_rois(rois[:1], (HEIGHT, WIDTH))
  assert mask[8:29, 10:31].all() and mask.sum() == 21 * 21  # corners rounded to 10, 28


def test_partly_outside_polygon_is_clipped(root):
  found, skipped = read(root)
  clipped = found['22678622']['rois'][1]
  assert clipped['points'] == [[0.0, 40.0], [63.0, 40.0], [63.0, 47.0]]
  assert not [skip for skip in skipped if skip['id'] == 'inbreast_22678622']


def test_polygon_entirely_outside_is_skipped_naming_the_xml(root):
  found, skipped = read(root)
  assert found['22678624']['rois'] == []  # its only Mass lies outside the 64x48 image
  (skip,) = skipped
  assert skip['file'] == str(root / 'AllXML' / '22678624.xml')
  assert skip['id'] == 'inbreast_22678624' and 'ROI 1' in skip['reason']
  assert 'no point inside the 64x48 image' in skip['reason']


def test_lesion_types_select_rois_and_single_points_become_circles(root):
  found, _ = read(root, lesion_types=('mass', 'Calcification', 'Cluster'))
  rois = found['22678622']['rois']
  assert rois[1] == {'shape': 'circle', 'x': 40.0, 'y': 20.0, 'radius': 3.0}
  assert len(rois) == 3
  assert found['22678624']['rois'][0]['points'] == [[5.0, 5.0], [9.0, 5.0], [9.0, 9.0]]
  mask = records.render_rois([rois[1]], (HEIGHT, WIDTH))
  assert mask[20, 40] == 1 and mask[20, 43] == 1 and mask[20, 45] == 0


def test_missing_dicom_and_dicom_without_row_are_skipped(root):
  write_csv(root, [('22678622', '4c'), ('22678699', '3')])
  found, skipped = read(root)
  assert list(found) == ['22678622']
  by_id = {skip['id']: skip for skip in skipped}
  assert by_id['inbreast_22678699']['file'] == str(root / 'INbreast.csv')
  assert by_id['inbreast_22678699']['row'] == 3
  assert 'no DICOM named 22678699_*.dcm' in by_id['inbreast_22678699']['reason']
  unlisted = by_id['inbreast_22678623']
  assert unlisted['file'].endswith(IMAGES['22678623'][0]) and 'no row' in unlisted['reason']
  assert {'inbreast_22678624', 'inbreast_22678625'} <= set(by_id)


@pytest.mark.parametrize('content', [
    b'<?xml version="1.0"?><plist><dict><key>Images</key>',  # truncated
    b'not xml at all',
    # An entity declaration (the "billion laughs" attack) is refused, not expanded.
    b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaa">]><plist><string>&a;</string>'
    b'</plist>',
    plistlib.dumps({'Images': [{'ROIs': [{'Name': 'Mass', 'Point_px': ['12, 4']}]}]}),
    plistlib.dumps({'Something': []}),
])
def test_unreadable_xml_skips_the_image_naming_the_file(root, content):
  xml_path = root / 'AllXML' / '22678625.xml'
  xml_path.write_bytes(content)
  found, skipped = read(root)
  assert '22678625' not in found and len(found) == 3
  skip = [skip for skip in skipped if skip['id'] == 'inbreast_22678625'][0]
  assert skip['file'] == str(xml_path) and str(xml_path) in skip['reason']


def test_unreadable_dicom_is_skipped_naming_it(root):
  path = root / 'AllDICOMs' / IMAGES['22678623'][0]
  path.write_bytes(b'garbage')
  found, skipped = read(root)
  assert '22678623' not in found
  skip = [skip for skip in skipped if skip['id'] == 'inbreast_22678623'][0]
  assert skip['file'] == str(path) and str(path) in skip['reason']


def test_badly_named_dicom_is_reported(root):
  (root / 'AllDICOMs' / 'scan.dcm').write_bytes(b'')
  _, skipped = read(root)
  assert any(skip['file'].endswith('scan.dcm') and 'name does not follow' in skip['reason']
             for skip in skipped)


def test_unknown_birads_names_the_csv_and_row(root):
  write_csv(root, [('22678622', '4c'), ('22678623', '7')])
  with pytest.raises(ValueError, match="row 3: unknown Bi-Rads value '7'") as error:
    read(root)
  assert str(root / 'INbreast.csv') in str(error.value) and '4a' in str(error.value)


@pytest.mark.parametrize('rows, words', [
    ([('22678622', '4c'), ('22678622', '4c')], ['row 3', 'already on row 2']),
    ([('22678622', '4c'), ('file-23', '2')], ['row 3', "'file-23'"]),
])
def test_bad_csv_rows_name_the_file_and_row(root, rows, words):
  write_csv(root, rows)
  with pytest.raises(ValueError) as error:
    read(root)
  assert str(root / 'INbreast.csv') in str(error.value)
  for word in words:
    assert word in str(error.value)


def test_missing_column_and_files_are_clear_errors(root, tmp_path_factory):
  (root / 'INbreast.csv').write_text('File Name,Bi-Rads\n22678622,4c\n')  # commas, not ';'
  with pytest.raises(ValueError, match='missing column') as error:
    read(root)
  assert 'semicolon' in str(error.value)
  empty = tmp_path_factory.mktemp('empty')
  with pytest.raises(FileNotFoundError, match='INbreast.csv'):
    read(empty)
  write_csv(empty, [])
  with pytest.raises(FileNotFoundError, match='AllDICOMs'):
    read(empty)


def test_bad_arguments_are_rejected(root):
  with pytest.raises(ValueError, match='birads_threshold'):
    read(root, birads_threshold='7')
  with pytest.raises(ValueError, match='sequence'):
    read(root, lesion_types='Mass')


@pytest.mark.parametrize('photometric', ['MONOCHROME2', 'MONOCHROME1'])
def test_image_io_reads_the_dicom_fixture(tmp_path, photometric):
  pixels = gradient() % 4096  # a 12-bit mammogram
  path = tmp_path / 'AllDICOMs' / 'x.dcm'
  write_dicom(path, pixels, photometric=photometric, bits_stored=12)
  image = image_io.load_grayscale(path)
  assert image.shape == (HEIGHT, WIDTH) and image.dtype == np.uint16
  expected = pixels if photometric == 'MONOCHROME2' else 4095 - pixels  # white = dense
  np.testing.assert_array_equal(image, np.round(expected * (65535 / 4095)).astype(np.uint16))
  assert inbreast.read_image_size(str(path)) == (HEIGHT, WIDTH)
