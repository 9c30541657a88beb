"""A run started from a Keras weight file really starts from it."""

import os

import h5py
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.conftest import run_main

keras = pytest.importorskip('keras') if os.environ.setdefault('KERAS_BACKEND', 'jax') else None
legacy_h5 = pytest.importorskip('keras.src.legacy.saving.legacy_h5_format')


@pytest.fixture(scope='module')
def resnet50_file(tmp_path_factory):
  model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
  path = tmp_path_factory.mktemp('keras') / 'resnet50_notop.h5'
  with h5py.File(path, 'w') as file:
    legacy_h5.save_weights_to_hdf5_group(file, model)
  return model, path


def test_frozen_pretrained_backbone_keeps_the_file_weights(resnet50_file, tmp_path):
  model, path = resnet50_file
  result = run_main('--config=configs/feature_extraction.py:smoke', f'--workdir={tmp_path}',
                    '--config.model.backbone=resnet50', f'--config.model.pretrained={path}',
                    '--config.data.preprocess.normalize=none')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Loaded 106 layers' in result.stderr
  best = tmp_path / 'checkpoints' / 'best'
  step = max(int(p.name) for p in best.iterdir() if p.name.isdigit())
  restored = ocp.StandardCheckpointer().restore(best / str(step) / 'state')
  stem = restored['params']['backbone']['blocks']['0']['conv1']['conv']['kernel']
  np.testing.assert_array_equal(stem, model.get_layer('conv1_conv').get_weights()[0])


def test_pretrained_run_refuses_zscore_inputs(resnet50_file, tmp_path):
  _, path = resnet50_file
  result = run_main('--config=configs/feature_extraction.py:smoke', f'--workdir={tmp_path}',
                    '--config.model.backbone=resnet50', f'--config.model.pretrained={path}')
  assert result.returncode == 2
  assert 'normalize=none' in result.stderr


def test_small_cnn_has_no_weight_file(resnet50_file, tmp_path):
  _, path = resnet50_file
  result = run_main('--config=configs/feature_extraction.py:smoke', f'--workdir={tmp_path}',
                    f'--config.model.pretrained={path}', '--config.data.preprocess.normalize=none')
  assert result.returncode == 2
  assert 'small_cnn has no Keras counterpart' in result.stderr
