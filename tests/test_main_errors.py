"""User errors end with a message naming the choices, never a traceback."""

import importlib.util

import pytest

from mammojax import train
from tests.conftest import REPO, run_main


def smoke_config():
  spec = importlib.util.spec_from_file_location('finetune', REPO / 'configs' / 'finetune.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config('smoke')


@pytest.mark.parametrize('field, value, expected', [
    ('model.backbone', 'resnet5', "'resnet50', 'small_cnn'"),
    ('schedule', 'warmup,finetuning', "Unknown phase 'finetuning'"),
    ('phases.finetune.unfreeze', '99', "unfreeze='all' or an integer 0..5 for small_cnn"),
    ('data.augmentation', 'rotate', 'valid choices'),
    ('phases.finetune.optimizer', 'rmsprop', "valid choices: ('adam', 'adamw', 'sgd')"),
    ('train.loss', 'hinge', "valid choices: ('cross_entropy', 'focal')"),
    ('data.source', 'mias2', "valid choices: ('synthetic', 'cbis_ddsm', 'mias'"),
    ('data.source', 'mias', 'data.source=mias needs --config.data.root=FOLDER'),
    ('data.source', 'synthetic,mias', 'give as many data.root folders'),
    ('data.crop', 'lesion', "valid choices: ('auto', 'roi', 'whole')"),
    ('data.balance', 'oversample', "valid choices: ('none', 'batches')"),
    ('data.classes', 'normal,benign,malignant', '--config.model.num_classes=3'),
])
def test_bad_choice_names_the_valid_ones_before_touching_the_workdir(tmp_path, field, value,
                                                                   expected):
  config = smoke_config()
  *parents, last = field.split('.')
  node = config
  for name in parents:
    node = node[name]
  node[last] = value
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match=expected.replace('(', r'\(').replace(')', r'\)')
                     .replace('[', r'\[').replace('.', r'\.')):
    train.build_run(config, workdir)
  assert not workdir.exists()  # a typo leaves nothing behind


def test_cli_error_exits_2_without_traceback(tmp_path):
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={tmp_path}',
                    '--config.model.backbone=resnet5')
  assert result.returncode == 2
  assert 'valid choices' in result.stderr and 'Traceback' not in result.stderr


def test_unknown_config_key_suggests_the_right_one(tmp_path):
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={tmp_path}',
                    '--config.model.backbon=resnet50')
  assert result.returncode != 0
  assert 'Did you mean "backbone"' in result.stderr


def test_workdir_with_another_config_is_refused(smoke_run):
  workdir, _ = smoke_run
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}',
                    '--config.data.batch_size=4')
  assert result.returncode == 2
  assert 'data.batch_size: 8 → 4' in result.stderr
  assert '--config.overwrite=True' in result.stderr
