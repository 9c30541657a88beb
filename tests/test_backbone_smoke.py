"""The smoke fine-tuning job runs end to end on every Keras-application backbone.

One fine-tuning epoch (last 3 blocks unfrozen) per backbone keeps this to the
compile time of each network; the full three-phase smoke run is covered with
small_cnn in test_train.py.
"""

import importlib.util
import json
import pathlib

import pytest

from mammojax import models, train

REPO = pathlib.Path(__file__).resolve().parents[1]
BACKBONES = ['resnet50', 'densenet121', 'mobilenet', 'mobilenet_v2', 'inception_v3', 'vgg16']


def smoke_config(backbone: str):
  spec = importlib.util.spec_from_file_location('finetune', REPO / 'configs' / 'finetune.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config('smoke')
  config.model.backbone = backbone
  config.schedule = 'finetune'
  config.phases.finetune.epochs = 1
  config.data.patch_size = max(config.data.patch_size, models.BACKBONES[backbone].min_size)
  return config


@pytest.mark.parametrize('backbone', BACKBONES)
def test_smoke_finetune_runs(backbone, tmp_path):
  summary = train.train_and_evaluate(smoke_config(backbone), tmp_path)
  assert summary['backbone'] == backbone
  phase = summary['phases'][0]
  assert phase['name'] == 'finetune' and len(phase['unfrozen_blocks']) == 3
  assert 0 < phase['trainable_params']
  assert json.loads((tmp_path / 'summary.json').read_text())['test']['confusion']['counts']
