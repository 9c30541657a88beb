"""Optuna search: trials are runs, the study resumes from the workdir."""

import json

import optuna
import pytest

from mammojax import search
from tests.conftest import run_main

SPACE = 'phases.finetune.learning_rate=log:1e-3:5e-2;data.augmentation=cat:none,flip_hv'


def test_three_trials_then_resumed_to_five(tmp_path):
  args = ['--config=configs/search_finetune.py:smoke', f'--workdir={tmp_path}',
          f'--config.search.space={SPACE}']
  first = run_main(*args)
  assert first.returncode == 0, first.stderr[-3000:]
  assert len(json.loads((tmp_path / 'search.json').read_text())['trials']) == 3
  second = run_main(*args, '--config.search.n_trials=5')
  assert second.returncode == 0, second.stderr[-3000:]
  trials = json.loads((tmp_path / 'search.json').read_text())['trials']
  assert [t['number'] for t in trials] == [0, 1, 2, 3, 4]
  assert all(t['state'] in ('COMPLETE', 'PRUNED') for t in trials)
  study = optuna.load_study(study_name='search', storage=f'sqlite:///{tmp_path / "study.db"}')
  assert len(study.trials) == 5
  assert sorted(p.name for p in tmp_path.glob('trial_*')) == [f'trial_{i:03d}' for i in range(5)]


def test_space_parsing_and_errors():
  space = search.parse_space('a.b=log:1e-4:1e-1; c=cat:x,y ;d=int:1:3')
  assert space == {'a.b': ('log', ['1e-4', '1e-1']), 'c': ('cat', ['x', 'y']),
                   'd': ('int', ['1', '3'])}
  with pytest.raises(ValueError, match='kind one of'):
    search.parse_space('a=uniform:0:1')
  with pytest.raises(ValueError, match='low:high'):
    search.parse_space('a=log:1')


def test_categorical_values_take_the_field_type():
  import ml_collections
  config = ml_collections.ConfigDict({'data': {'flag': False, 'size': 64, 'name': 'x'}})
  trial = optuna.trial.FixedTrial({'data.flag': 'true', 'data.size': '48', 'data.name': 'y'})
  values = search.suggest(trial, config, search.parse_space(
      'data.flag=cat:false,true;data.size=cat:48,64;data.name=cat:x,y'))
  assert values == {'data.flag': True, 'data.size': 48, 'data.name': 'y'}
  with pytest.raises(ValueError, match='does not have'):
    search.suggest(trial, config, search.parse_space('data.missing=cat:a'))
