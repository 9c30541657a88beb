"""Self-supervised pretraining → a classifier on the pretrained encoder."""

import json

import jax
import numpy as np
import pytest

from mammojax import init_from, train
from tests.conftest import run_main
from tests.test_main_errors import smoke_config

ENCODER_SIZES = ('--config.model.unet.depth=2', '--config.model.unet.width=4')


def test_pretrain_then_classifier_from_its_encoder(tmp_path):
  pretrained = tmp_path / 'autoencoder'
  result = run_main('--config=configs/pretrain_autoencoder.py:smoke', f'--workdir={pretrained}')
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((pretrained / 'summary.json').read_text())
  assert summary['task'] == 'autoencoder' and np.isfinite(summary['val']['psnr'])
  assert (pretrained / 'plots' / 'reconstructions.png').is_file()
  assert 'psnr' in (pretrained / 'report.md').read_text()

  # The classifier's encoder blocks start as the autoencoder's, bit for bit.
  config = smoke_config()
  config.model.backbone = 'unet_encoder'
  config.model.unet.depth, config.model.unet.width = 2, 4
  config.model.init_from = str(pretrained)
  run = train.build_run(config, tmp_path / 'check')
  encoder, encoder_stats, _ = init_from.read_encoder(pretrained)
  for index, block in encoder['blocks'].items():
    jax.tree.map(np.testing.assert_array_equal, block, run.params['backbone']['blocks'][index])
    if encoder_stats:
      jax.tree.map(np.testing.assert_array_equal, encoder_stats['blocks'][index],
                   run.batch_stats['backbone']['blocks'][index])

  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={tmp_path / "finetune"}',
                    '--config.model.backbone=unet_encoder',
                    f'--config.model.init_from={pretrained}',
                    *ENCODER_SIZES)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / 'finetune' / 'summary.json').read_text())
  assert summary['phases'][1]['unfrozen_blocks'] == ['enc2', 'bottleneck', 'features']


def test_init_from_a_folder_without_a_run_is_explained(tmp_path):
  run_dir = tmp_path / 'not_a_run'
  run_dir.mkdir()
  config = smoke_config()
  config.model.backbone = 'unet_encoder'
  config.model.init_from = str(run_dir)
  with pytest.raises(ValueError, match='holds no config.json'):
    train.build_run(config, tmp_path / 'check')
