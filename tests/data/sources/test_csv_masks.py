"""Tests of the CSV + images/ + masks/ reader (ISIC style)."""

import logging
import pathlib

import cv2
import numpy as np
import pytest

from mammojax.data import records as records_lib
from mammojax.data.sources.csv_masks import read_csv_with_masks


def write_image(path: pathlib.Path, value: int = 120) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), np.full((64, 48, 3), value, np.uint8))


def write_isic(root: pathlib.Path, csv_text: str, images=(), masks=()) -> None:
  root.mkdir(parents=True, exist_ok=True)
  (root / 'labels.csv').write_text(csv_text)
  (root / 'images').mkdir(exist_ok=True)
  for name in images:
    write_image(root / 'images' / name)
  for name in masks:
    write_image(root / 'masks' / name, 255)


def test_isic_set_gives_records_with_masks(tmp_path):
  write_isic(tmp_path, 'id,label,age\nISIC_001,melanoma,40\nISIC_002,nevus,51\n'
             'ISIC_003,nevus,\n',
             images=['ISIC_001.jpg', 'ISIC_002.jpeg', 'ISIC_003.PNG'],
             masks=['ISIC_001.png', 'ISIC_002_segmentation.png', 'ISIC_003_Segmentation.png'])
  records, skipped = read_csv_with_masks(tmp_path)
  assert skipped == []
  for record in records:
    records_lib.check_record(record)
    assert record['mask_missing'] is False and len(record['mask_paths']) == 1
  first, second, third = records
  assert first['id'] == first['image_id'] == 'csv_masks/ISIC_001'
  assert first['image_path'] == str(tmp_path / 'images' / 'ISIC_001.jpg')
  assert first['mask_paths'] == [str(tmp_path / 'masks' / 'ISIC_001.png')]
  assert (first['class_name'], first['patient_id'], first['split']) == ('melanoma', 'ISIC_001', '')
  assert first['columns'] == {'age': '40'}
  assert second['mask_paths'] == [str(tmp_path / 'masks' / 'ISIC_002_segmentation.png')]
  assert third['image_path'].endswith('ISIC_003.PNG') and third['class_name'] == 'nevus'


def test_patient_and_split_columns_are_used(tmp_path):
  write_isic(tmp_path, 'image,diagnosis,patient,split\na,0,P1,train\nb,1,P1,validation\n'
             'c,1,P2,test\n', images=['a.png', 'b.png', 'c.png'])
  records, _ = read_csv_with_masks(tmp_path, id_column='image', label_column='Diagnosis',
                                   mask_dir=None, source='isic2017')
  assert [(r['id'], r['class_name'], r['patient_id'], r['split']) for r in records] == [
      ('isic2017/a', '0', 'P1', 'train'), ('isic2017/b', '1', 'P1', 'val'),
      ('isic2017/c', '1', 'P2', 'test')]
  assert all(r['mask_missing'] is False and r['columns'] == {} for r in records)


def test_missing_image_is_skipped_missing_mask_is_flagged(tmp_path, caplog):
  write_isic(tmp_path, 'id,label\nwith_mask,1\nno_mask,0\nno_image,1\n',
             images=['with_mask.jpg', 'no_mask.jpg'], masks=['with_mask.png'])
  with caplog.at_level(logging.WARNING):
    records, skipped = read_csv_with_masks(tmp_path)
  assert [(r['id'], r['mask_missing'], len(r['mask_paths'])) for r in records] == [
      ('csv_masks/with_mask', False, 1), ('csv_masks/no_mask', True, 0)]
  (skip,) = skipped
  assert (skip['row'], skip['id'], skip['file']) == (4, 'csv_masks/no_image',
                                                     str(tmp_path / 'labels.csv'))
  assert 'image not found' in skip['reason'] and 'no_image' in skip['reason']
  assert '1 of 2 images have no mask' in caplog.text


def test_empty_cells_are_skipped_with_reasons(tmp_path):
  write_isic(tmp_path, 'id,label\n,1\na,\n', images=['a.jpg'])
  records, skipped = read_csv_with_masks(tmp_path)
  assert records == []
  assert [(s['row'], s['reason']) for s in skipped] == [(2, 'empty id'), (3, 'empty label')]


def test_missing_column_names_csv_column_and_columns_found(tmp_path):
  write_isic(tmp_path, 'image_id,melanoma\nISIC_1,1\n')
  with pytest.raises(ValueError) as error:
    read_csv_with_masks(tmp_path)
  message = str(error.value)
  assert str(tmp_path / 'labels.csv') in message and "'id'" in message
  assert "['image_id', 'melanoma']" in message


def test_duplicate_ids_are_an_error(tmp_path):
  write_isic(tmp_path, 'id,label\na,1\nb,0\na,0\n', images=['a.jpg', 'b.jpg'])
  with pytest.raises(ValueError, match=r"'a' \(rows \[2, 4\]\)") as error:
    read_csv_with_masks(tmp_path)
  assert 'labels.csv' in str(error.value)


def test_bad_split_names_the_row(tmp_path):
  write_isic(tmp_path, 'id,label,split\na,1,holdout\n', images=['a.jpg'])
  with pytest.raises(ValueError, match="row 2: split 'holdout'"):
    read_csv_with_masks(tmp_path)


@pytest.mark.parametrize('bad_id', ['../secret', '../../secret', '/etc/passwd', '../masks/m'])
def test_ids_cannot_escape_their_folder(tmp_path, bad_id):
  root = tmp_path / 'set'
  write_isic(root, f'id,label\n{bad_id},1\nsub/ok,0\n', images=['sub/ok.jpg'],
             masks=['m.png.jpg', 'm.jpg'])
  write_image(tmp_path / 'secret.jpg')
  records, skipped = read_csv_with_masks(root)
  assert [r['image_path'] for r in records] == [str(root / 'images' / 'sub' / 'ok.jpg')]
  (skip,) = skipped
  assert 'outside' in skip['reason'] and str(root / 'images') in skip['reason']


def test_missing_csv_and_image_folder_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='labels.csv'):
    read_csv_with_masks(tmp_path)
  (tmp_path / 'train.csv').write_text('id,label\n')
  with pytest.raises(FileNotFoundError, match='Image folder not found') as error:
    read_csv_with_masks(tmp_path, csv_name='train.csv', image_dir='jpgs')
  assert str(tmp_path / 'jpgs') in str(error.value)
