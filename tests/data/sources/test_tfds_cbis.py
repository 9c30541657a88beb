"""Tests of the TFDS curated_breast_imaging_ddsm source, on TFDS's mocked data (no TensorFlow)."""

import csv

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mammojax.data import image_io
from mammojax.data import records as records_lib
from mammojax.data.sources import tfds_cbis
from mammojax.data.sources.tfds_cbis import read_tfds_cbis

CLASSES = ['BACKGROUND', 'BENIGN_CALCIFICATION', 'BENIGN_MASS', 'MALIGNANT_CALCIFICATION',
           'MALIGNANT_MASS']


def mocked(num_examples: int):
  return tfds.testing.mock_data(num_examples=num_examples,
                                policy=tfds.testing.MockPolicy.USE_CODE)


def mocked_examples(split: str) -> list[dict]:
  """The examples the mock serves (inside a mock_data context)."""
  (source,) = tfds.data_source('curated_breast_imaging_ddsm/patches', split=[split])
  return [source[index] for index in range(len(source))]


def test_patches_become_cached_pngs_and_records(tmp_path):
  with mocked(4):
    records, skipped = read_tfds_cbis(tmp_path / 'tfds', cache_dir=tmp_path / 'cache')
    examples = mocked_examples('validation')
  assert skipped == [] and len(records) == 3 * 4
  assert [r['split'] for r in records] == ['train'] * 4 + ['val'] * 4 + ['test'] * 4
  for record in records:
    records_lib.check_record(record)
    assert record['class_name'] in CLASSES and record['source'] == 'tfds_cbis'
    assert (record['mask_paths'], record['rois']) == ([], [])
  val = [r for r in records if r['split'] == 'val']
  assert val[1]['id'] == 'tfds_cbis/val/000001'
  assert val[1]['image_path'] == str(
      tmp_path / 'cache/curated_breast_imaging_ddsm/patches/3.0.0/validation/000001.png')
  for record, example in zip(val, examples):
    assert np.array_equal(image_io.load_grayscale(record['image_path']), example['image'][..., 0])
    assert record['class_name'] == CLASSES[int(example['label'])]
    assert record['tfds_id'] == example['id']


def test_cache_is_reused_without_writing(tmp_path, monkeypatch):
  with mocked(3):
    first, _ = read_tfds_cbis(cache_dir=tmp_path, splits=('train',))
    def no_writing(*args):
      raise AssertionError('the cached split was written again')
    monkeypatch.setattr(tfds_cbis.cv2, 'imwrite', no_writing)
    again, _ = read_tfds_cbis(cache_dir=tmp_path, splits=('train',))
  assert again == first


def test_interrupted_or_stale_cache_is_written_again(tmp_path):
  with mocked(3):
    read_tfds_cbis(cache_dir=tmp_path, splits=('test',))
  folder = tmp_path / 'curated_breast_imaging_ddsm/patches/3.0.0/test'
  (folder / '000002.png').unlink()  # as if interrupted mid-way
  with mocked(3):
    records, _ = read_tfds_cbis(cache_dir=tmp_path, splits=('test',))
  assert (folder / '000002.png').is_file()
  with mocked(5):  # another build of the dataset: other example count
    records, _ = read_tfds_cbis(cache_dir=tmp_path, splits=('test',))
  assert len(records) == 5
  with open(folder / 'index.csv', newline='') as handle:
    assert [row['file'] for row in csv.DictReader(handle)] == [f'00000{i}.png' for i in range(5)]
  assert not list(folder.parent.glob('.test.tmp-*'))


@pytest.mark.parametrize('tfds_id, image_key', [
    ('1.3.6.1/1.3.6.2/abnorm_1/patch_0', '1.3.6.1/1.3.6.2'),
    ('1.3.6.1/1.3.6.2/background_3', '1.3.6.1/1.3.6.2'),
    ('odd-id', 'odd-id'),
    ('', 'tfds_cbis/train/000000'),
])
def test_patient_is_the_patch_s_full_image(tmp_path, tfds_id, image_key):
  record = tfds_cbis._record({'file': '000000.png', 'tfds_id': tfds_id, 'label': '2'}, tmp_path,
                             'train', CLASSES, 'tfds_cbis')
  assert record['patient_id'] == record['image_id'] == image_key
  assert record['class_name'] == 'BENIGN_MASS'


@pytest.mark.parametrize('state', ['absent', 'folder without array_record files'])
def test_unbuilt_dataset_says_how_to_build_and_where_it_looked(tmp_path, state):
  if state != 'absent':
    (tmp_path / 'tfds/curated_breast_imaging_ddsm/patches/3.0.0').mkdir(parents=True)
  with pytest.raises(FileNotFoundError) as error:
    read_tfds_cbis(tmp_path / 'tfds', cache_dir=tmp_path / 'cache')
  message = str(error.value)
  assert 'tfds build curated_breast_imaging_ddsm' in message
  assert '--file_format=array_record' in message
  assert str(tmp_path / 'tfds' / 'curated_breast_imaging_ddsm') in message
  assert ('does not exist' in message) == (state == 'absent')
  assert not (tmp_path / 'cache').exists()


def test_bad_config_or_split_is_rejected(tmp_path):
  with pytest.raises(ValueError, match='read_cbis_ddsm'):
    read_tfds_cbis(cache_dir=tmp_path, config_name='original-mass')
  with pytest.raises(ValueError, match="'val'"):
    read_tfds_cbis(cache_dir=tmp_path, splits=('val',))
  with pytest.raises(ValueError, match='sequence'):
    read_tfds_cbis(cache_dir=tmp_path, splits='train')
