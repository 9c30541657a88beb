"""Records of several sources → labelled, patient-split patch sets and the data report."""

import cv2
import ml_collections
import numpy as np
import pytest

from mammojax import defaults
from mammojax.data import datasets


def write_mias(root, num_images=24):
  """A tiny MIAS download: one disc per abnormal image, every third image normal."""
  lines = ['REFNUM BG CLASS SEVERITY X Y RADIUS']
  rng = np.random.default_rng(0)
  for number in range(1, num_images + 1):
    refnum = f'mdb{number:03d}'
    image = rng.integers(20, 60, (48, 40)).astype(np.uint8)
    if number % 3 == 0:
      lines.append(f'{refnum} G NORM')
    else:
      x, y_row, radius = 20, 18, 5
      cv2.circle(image, (x, y_row), radius, 220, -1)
      severity = 'M' if number % 2 else 'B'
      lines.append(f'{refnum} G CIRC {severity} {x} {48 - 1 - y_row} {radius}')
    cv2.imwrite(str(root / f'{refnum}.pgm'), image)
  (root / 'Info.txt').write_text('\n'.join(lines) + '\n')
  return root


def data_config(**overrides) -> ml_collections.ConfigDict:
  config = defaults.shrink_for_smoke(defaults.base_config()).data
  config.patch_size = 16
  config.update(overrides)
  return config


@pytest.fixture(name='mias_root')
def fixture_mias_root(tmp_path):
  root = tmp_path / 'mias'
  root.mkdir()
  return write_mias(root)


def test_mias_alone_is_split_by_patient_and_normals_are_reported(mias_root, tmp_path):
  data = datasets.build_datasets(data_config(source='mias', root=str(mias_root)), seed=0,
                                 cache_dir=tmp_path / 'cache')
  assert data.class_names == ('benign', 'malignant')
  counts = data.report['counts']
  assert sum(n for split in counts.values() for c in split.values() for n in c.values()) == 16
  assert data.report['num_skipped'] == 8  # the NORM rows: not in data.classes
  assert all("class 'normal' is not in data.classes" in s['reason']
             for s in data.report['skipped'])
  patients = [{r['patient_id'] for r in getattr(data, s).records} for s in ('train', 'val', 'test')]
  assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])


def test_classes_choose_and_order_the_labels(mias_root, tmp_path):
  config = data_config(source='mias', root=str(mias_root), classes='normal,benign,malignant',
                       crop='whole')
  data = datasets.build_datasets(config, seed=0, cache_dir=tmp_path / 'cache')
  assert data.class_names == ('normal', 'benign', 'malignant')
  labels = {r['class_name']: r['label'] for s in ('train', 'val', 'test')
            for r in getattr(data, s).records}
  assert labels == {'normal': 0, 'benign': 1, 'malignant': 2}
  assert data.report['num_skipped'] == 0


def test_two_sources_in_one_run_keep_their_source(mias_root, tmp_path):
  config = data_config(source='synthetic,mias', root=f',{mias_root}')
  data = datasets.build_datasets(config, seed=0, cache_dir=tmp_path / 'cache')
  sources = {r['source'] for s in ('train', 'val', 'test') for r in getattr(data, s).records}
  assert sources == {'synthetic', 'mias'}
  assert set(data.report['counts']['train']) == {'synthetic', 'mias'}
  ids = [r['id'] for s in ('train', 'val', 'test') for r in getattr(data, s).records]
  assert len(ids) == len(set(ids)) and any(i.startswith('mias/') for i in ids)


def test_missing_root_and_unknown_source_are_explained(tmp_path):
  with pytest.raises(ValueError, match='needs --config.data.root'):
    datasets.configured_sources(data_config(source='inbreast'))
  with pytest.raises(ValueError, match='is not a folder'):
    datasets.configured_sources(data_config(source='mias', root=str(tmp_path / 'nope')))
  with pytest.raises(ValueError, match="valid choices: \\('synthetic'"):
    datasets.configured_sources(data_config(source='ddsm'))


def write_chest_xray(root, per_class=8):
  """The Kermany chest_xray layout: split/class/person<N>_... .jpeg."""
  rng = np.random.default_rng(1)
  person = 0
  for split, count in (('train', per_class), ('val', 2), ('test', 3)):
    for label, name in enumerate(('NORMAL', 'PNEUMONIA')):
      folder = root / split / name
      folder.mkdir(parents=True)
      for index in range(count):
        image = rng.integers(0, 80, (30, 36)).astype(np.uint8) + 100 * label
        person += 1
        cv2.imwrite(str(folder / f'person{person}_bacteria_{index}.jpeg'), image)
  (root / 'train' / 'NORMAL' / '.DS_Store').write_bytes(b'\0\1')
  return root


def test_class_folders_keep_their_splits_and_whole_images(tmp_path):
  root = write_chest_xray(tmp_path / 'chest_xray')
  data = datasets.build_datasets(data_config(source='folders', root=str(root)), seed=0,
                                 cache_dir=tmp_path / 'cache')
  assert data.class_names == ('NORMAL', 'PNEUMONIA')
  assert [len(getattr(data, s).images) for s in ('train', 'val', 'test')] == [16, 4, 6]
  assert data.train.images.shape[1:] == (16, 16, 1)  # whole images: crop='auto' → 'whole'
  assert data.report['num_skipped'] == 1 and '.DS_Store' in data.report['skipped'][0]['file']
  assert data.report['counts']['test'] == {'chest_xray': {'NORMAL': 3, 'PNEUMONIA': 3}}


def test_a_patient_in_two_dataset_splits_is_reported_not_leaked(tmp_path):
  root = write_chest_xray(tmp_path / 'chest_xray')
  test_image = next((root / 'test' / 'NORMAL').glob('*.jpeg'))
  test_image.rename(root / 'test' / 'NORMAL' / 'person1_bacteria_9.jpeg')  # person1 trains too
  data = datasets.build_datasets(data_config(source='folders', root=str(root)), seed=0,
                                 cache_dir=tmp_path / 'cache')
  leaked = [s for s in data.report['skipped'] if 'avoid leakage' in s['reason']]
  assert len(leaked) == 1 and 'person1_bacteria_0' in leaked[0]['file']
  assert len(data.train.images) == 15


def test_csv_with_masks_crops_lesions_by_their_masks(tmp_path):
  root = tmp_path / 'isic'
  (root / 'images').mkdir(parents=True)
  (root / 'masks').mkdir()
  rows = ['id,label']
  for index in range(12):
    image = np.full((40, 50, 3), 90, np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    cv2.circle(mask, (15 + index, 20), 6, 255, -1)
    image[mask > 0] = (40, 30, 120)
    cv2.imwrite(str(root / 'images' / f'ISIC_{index:07d}.jpg'), image)
    cv2.imwrite(str(root / 'masks' / f'ISIC_{index:07d}_segmentation.png'), mask)
    rows.append(f'ISIC_{index:07d},{"melanoma" if index % 2 else "nevus"}')
  (root / 'labels.csv').write_text('\n'.join(rows) + '\n')
  data = datasets.build_datasets(data_config(source='csv_masks', root=str(root),
                                             test_fraction=0.25, val_fraction=0.25),
                                 seed=0, cache_dir=tmp_path / 'cache')
  assert data.class_names == ('melanoma', 'nevus')
  patches = np.concatenate([data.train.masks, data.val.masks, data.test.masks])
  assert patches.shape[0] == 12 and patches[:, 8, 8, 0].all()  # every crop centred on its lesion


def test_extra_crops_train_only_and_background_patches(mias_root, tmp_path):
  config = data_config(source='mias', root=str(mias_root), crops_per_lesion=3,
                       background_patches=2, classes='background,benign,malignant')
  data = datasets.build_datasets(config, seed=0, cache_dir=tmp_path / 'cache')
  train_ids = [r['id'] for r in data.train.records]
  lesions = [i for i in train_ids if '#' not in i]
  assert len([i for i in train_ids if '#crop' in i]) == 2 * len(lesions)
  assert not any('#crop' in r['id'] for r in data.val.records + data.test.records)
  background = [r for r in data.train.records if r['class_name'] == 'background']
  assert background and all(r['label'] == 0 for r in background)
  index = [i for i, r in enumerate(data.train.records) if r['class_name'] == 'background']
  assert not data.train.masks[index].any()  # background patches hold no lesion


def test_background_patches_need_a_background_class(mias_root, tmp_path):
  with pytest.raises(ValueError, match="needs a 'background' class"):
    datasets.build_datasets(data_config(source='mias', root=str(mias_root),
                                        background_patches=2), seed=0, cache_dir=tmp_path)
