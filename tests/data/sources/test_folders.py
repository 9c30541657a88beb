"""Tests of the folder-per-class reader (chest_xray-style trees)."""

import logging
import pathlib

import cv2
import numpy as np
import pytest

from mammojax.data import records as records_lib
from mammojax.data.sources.folders import patient_of, read_class_folders

KERMANY = {
    'NORMAL': ['IM-0115-0001.jpeg', 'NORMAL2-IM-1427-0001.jpeg'],
    'PNEUMONIA': ['person1_bacteria_1.jpeg', 'person1_virus_7.jpeg'],
}


def write_image(path: pathlib.Path) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), np.full((64, 48), 90, np.uint8))


def write_tree(root: pathlib.Path, splits=('train', 'test', 'val'), classes=KERMANY) -> None:
  for split in splits:
    for class_name, names in classes.items():
      for name in names:
        write_image(root / split / class_name / name)


def test_chest_xray_tree_gives_one_record_per_image(tmp_path):
  write_tree(tmp_path)
  records, skipped = read_class_folders(tmp_path, source='chest_xray')
  assert skipped == []
  assert len(records) == 3 * 4
  for record in records:
    records_lib.check_record(record)
    assert pathlib.Path(record['image_path']).is_file()
    assert (record['mask_paths'], record['rois'], record['source']) == ([], [], 'chest_xray')
  by_id = {record['id']: record for record in records}
  record = by_id['chest_xray/val/PNEUMONIA/person1_virus_7.jpeg']
  assert (record['split'], record['class_name'], record['patient_id']) == (
      'val', 'PNEUMONIA', 'person1')
  assert record['image_path'] == str(tmp_path / 'val/PNEUMONIA/person1_virus_7.jpeg')
  assert {r['split'] for r in records} == {'train', 'test', 'val'}
  assert {r['patient_id'] for r in records} == {'IM-0115', 'IM-1427', 'person1'}


@pytest.mark.parametrize('name, patient', [
    ('person1_bacteria_1.jpeg', 'person1'),
    ('person1_virus_7.jpeg', 'person1'),
    ('person1413_virus_2423.jpeg', 'person1413'),
    ('IM-0115-0001.jpeg', 'IM-0115'),
    ('NORMAL2-IM-1427-0001.jpeg', 'IM-1427'),
    ('ISIC_0000123.jpg', 'ISIC_0000123'),
    ('film-12.png', 'film-12'),  # 'IM-' inside a word is no Kermany patient
])
def test_patient_of_kermany_names(name, patient):
  assert patient_of(name) == patient


def test_validation_folder_and_upper_case_split_names(tmp_path):
  write_tree(tmp_path, splits=('TRAIN', 'validation'))
  records, _ = read_class_folders(tmp_path)
  assert {r['split'] for r in records} == {'train', 'val'}
  assert all(r['id'].startswith('folders/') for r in records)


def test_tree_without_split_level(tmp_path):
  for name in ('a.png', 'sub/b.png'):
    write_image(tmp_path / 'melanoma' / name)
  write_image(tmp_path / 'nevus' / 'c.jpg')
  records, skipped = read_class_folders(tmp_path)
  assert skipped == []
  assert sorted((r['class_name'], r['split'], r['patient_id']) for r in records) == [
      ('melanoma', '', 'a'), ('melanoma', '', 'b'), ('nevus', '', 'c')]


def test_non_images_and_loose_files_are_skipped_hidden_folders_ignored(tmp_path):
  write_tree(tmp_path, splits=('train', 'test'))
  (tmp_path / 'train' / 'NORMAL' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (tmp_path / 'train' / 'NORMAL' / 'notes.txt').write_text('x')
  (tmp_path / 'train' / 'NORMAL' / 'empty.jpeg').write_bytes(b'')
  (tmp_path / 'train' / 'readme.md').write_text('x')
  write_image(tmp_path / 'train' / '.cache' / 'x.png')
  write_image(tmp_path / '__MACOSX' / 'train' / 'NORMAL' / '._a.jpeg')
  write_image(tmp_path / 'test' / 'PNEUMONIA' / '.ipynb_checkpoints' / 'y.png')
  records, skipped = read_class_folders(tmp_path)
  assert len(records) == 2 * 4
  reasons = {pathlib.Path(s['file']).name: s['reason'] for s in skipped}
  assert set(reasons) == {'.DS_Store', 'notes.txt', 'empty.jpeg', 'readme.md'}
  assert 'not an image file' in reasons['.DS_Store'] and 'not an image' in reasons['notes.txt']
  assert reasons['empty.jpeg'] == 'empty file'
  assert reasons['readme.md'] == 'not inside a class folder'


def test_class_missing_from_a_split_is_skipped_with_a_warning(tmp_path, caplog):
  write_tree(tmp_path, splits=('train',))
  write_tree(tmp_path, splits=('test',), classes={'NORMAL': ['IM-0001-0001.jpeg'],
                                                  'Pneumonia': ['person9_virus_1.jpeg']})
  with caplog.at_level(logging.WARNING):
    records, skipped = read_class_folders(tmp_path)
  assert {r['class_name'] for r in records} == {'NORMAL'}
  assert len(records) == 3
  assert len(skipped) == 3  # two PNEUMONIA in train, one Pneumonia in test
  by_name = {pathlib.Path(s['file']).name: s['reason'] for s in skipped}
  assert "'Pneumonia'" in by_name['person9_virus_1.jpeg']
  assert str(tmp_path / 'train') in by_name['person9_virus_1.jpeg']
  assert str(tmp_path / 'test') in by_name['person1_virus_7.jpeg']
  assert 'Pneumonia' in caplog.text


@pytest.mark.parametrize('make', ['nothing', 'empty folders', 'only text'])
def test_tree_without_images_names_root_and_layout(tmp_path, make):
  if make == 'empty folders':
    (tmp_path / 'train' / 'NORMAL').mkdir(parents=True)
  elif make == 'only text':
    (tmp_path / 'NORMAL').mkdir()
    (tmp_path / 'NORMAL' / 'a.txt').write_text('x')
  with pytest.raises(ValueError, match='No image found') as error:
    read_class_folders(tmp_path)
  assert str(tmp_path) in str(error.value) and 'Expected layout' in str(error.value)


def test_empty_split_folder_is_an_error(tmp_path):
  write_tree(tmp_path, splits=('train',))
  (tmp_path / 'val').mkdir()
  with pytest.raises(ValueError, match='hold no image') as error:
    read_class_folders(tmp_path)
  assert str(tmp_path / 'val') in str(error.value)


def test_mixed_split_and_class_folders_are_an_error(tmp_path):
  write_tree(tmp_path, splits=('train',))
  write_image(tmp_path / 'NORMAL' / 'a.png')
  with pytest.raises(ValueError, match='mixes split folders') as error:
    read_class_folders(tmp_path)
  assert "['NORMAL']" in str(error.value)


def test_val_and_validation_together_are_an_error(tmp_path):
  write_tree(tmp_path, splits=('train', 'val', 'validation'))
  with pytest.raises(ValueError, match="two folders for split 'val'"):
    read_class_folders(tmp_path)


def test_missing_root_names_it(tmp_path):
  with pytest.raises(FileNotFoundError, match='nowhere'):
    read_class_folders(tmp_path / 'nowhere')
