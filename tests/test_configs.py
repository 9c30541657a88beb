"""Every config loads, validates and states its command in its docstring."""

import importlib.util
import pathlib

import pytest

from mammojax import models, search, sweep, train, unet_run

CONFIGS = sorted(pathlib.Path(__file__).resolve().parents[1].glob('configs/*.py'))


def load(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_documents_itself(path):
  module = load(path)
  assert f'--config=configs/{path.name}' in module.__doc__
  assert 'Expected' in module.__doc__
  for arg in (None, 'smoke'):
    validate(module.get_config(arg))


def validate(config) -> None:
  """What each task checks before it touches a workdir."""
  if config.task == 'classification':
    train.validate_config(config)
    assert set(config.schedule.split(',')) <= set(config.phases)
  elif config.task in ('segmentation', 'autoencoder'):
    autoencoder = config.task == 'autoencoder'
    model = models.create_unet(config.model, seed=0, autoencoder=autoencoder)
    assert unet_run.validate_config(config, model, autoencoder=autoencoder) >= 1
  elif config.task == 'sweep':
    for point in sweep.grid_points(config.sweep):
      validate(sweep.point_config(config, point))
  elif config.task == 'search':
    assert search.check_space(config)
  else:
    assert config.task == 'ensemble' and config.ensemble.method in ('stacking',
                                                                    'gradient_boosting', 'mean')


def test_paper_schedule_has_the_notes_numbers():
  config = load(CONFIGS[[p.stem for p in CONFIGS].index('finetune')]).get_config('paper')
  assert config.schedule == 'warmup,finetune,unfreeze_all'
  assert (config.phases.warmup.epochs, config.phases.warmup.optimizer) == (30, 'adam')
  finetune = config.phases.finetune
  assert (finetune.optimizer, finetune.learning_rate, finetune.epochs,
          finetune.early_stopping_patience) == ('sgd', 1e-4, 90, 20)
  assert config.phases.unfreeze_all.learning_rate == 1e-5
