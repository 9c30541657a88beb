"""User errors end with a message naming the choices, never a traceback."""

import pytest

from tests.conftest import run_main


@pytest.mark.parametrize('override, expected', [
    ('--config.model.backbone=resnet5', "'resnet50', 'small_cnn'"),
    ('--config.schedule=warmup,finetuning', "Unknown phase 'finetuning'"),
    ('--config.phases.finetune.unfreeze=99', "unfreeze='all' or an integer 0..5 for small_cnn"),
    ('--config.data.augmentation=rotate', 'valid choices'),
    ('--config.phases.finetune.optimizer=rmsprop', "valid choices: ('adam', 'adamw', 'sgd')"),
])
def test_bad_choice_names_the_valid_ones(tmp_path, override, expected):
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={tmp_path}', override)
  assert result.returncode == 2
  assert expected in result.stderr
  assert 'Traceback' not in result.stderr


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
