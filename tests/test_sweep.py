"""Sweeps: a 2 × 2 grid of smoke runs, resumable after a kill, failures recorded."""

import csv
import json
import signal
import subprocess
import sys
import time

import pytest

from mammojax import sweep
from tests.conftest import REPO, run_main
from tests.test_configs import load


def read_rows(path):
  with open(path, newline='') as file:
    return list(csv.DictReader(file))


def test_grid_points_cover_every_combination():
  config = load(REPO / 'configs' / 'sweep_finetune.py').get_config('smoke')
  config.sweep.backbone = 'small_cnn,mobilenet'
  points = sweep.grid_points(config.sweep)
  assert len(points) == 2 * 2 * 2
  assert len({sweep.point_name(p) for p in points}) == 8
  point = sweep.point_config(config, points[-1])
  assert point.model.backbone == 'mobilenet' and point.data.augmentation == 'flip_hv'
  assert point.phases.finetune.unfreeze == 'all' and point.phases.warmup.unfreeze == '0'


def test_unknown_axis_values_are_explained():
  config = load(REPO / 'configs' / 'sweep_finetune.py').get_config('smoke')
  config.sweep.weights = 'random,imagenett'
  with pytest.raises(ValueError, match="Unknown sweep values \\['imagenett'\\]"):
    sweep.grid_points(config.sweep)


def test_killed_sweep_resumes_without_redoing_finished_points(tmp_path):
  workdir = tmp_path / 'sweep'
  command = [sys.executable, '-m', 'mammojax.main', '--config=configs/sweep_finetune.py:smoke',
             f'--workdir={workdir}']
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    if (workdir / 'results.csv').exists() and len(read_rows(workdir / 'results.csv')) >= 2:
      process.send_signal(signal.SIGKILL)
      break
    time.sleep(0.2)
  process.wait()
  finished = [row['run'] for row in read_rows(workdir / 'results.csv')]
  assert len(finished) >= 2
  result = run_main('--config=configs/sweep_finetune.py:smoke', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  for name in finished:
    assert f'Sweep point {name}: finished before, skipped.' in result.stderr
  rows = read_rows(workdir / 'results.csv')
  assert len(rows) == 4 and all(row['status'] == 'done' for row in rows)
  assert len([p for p in workdir.iterdir() if (p / 'summary.json').exists()]) == 4
  for row in rows:
    assert 0 <= float(row['test_accuracy']) <= 1 and float(row['train_seconds']) > 0
  report = (workdir / 'report.md').read_text()
  assert '| augmentation \\ unfreeze | 2 | all |' in report and '**' in report
  for figure in ('training_time', 'accuracy_by_weights', 'accuracy_by_unfreeze',
                 'confusion_grid', 'roc_curves'):
    assert (workdir / 'plots' / f'{figure}.png').is_file(), figure
    assert f'](plots/{figure}.png)' in report
  assert report.count('training_curves.png') == 4  # one per point, linked

  # An ensemble of two points, from their prediction files.
  members = ','.join(row['workdir'] for row in rows[:2])
  ensemble_dir = tmp_path / 'ensemble'
  result = run_main('--config=configs/ensemble.py', f'--workdir={ensemble_dir}', '--mode=ensemble',
                    f'--config.ensemble.members={members}')
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((ensemble_dir / 'summary.json').read_text())
  assert summary['strategy'] == 'ensemble' and summary['best_single']['workdir'] in members
  assert 0 <= summary['test']['auc'] <= 1
  assert (ensemble_dir / 'plots' / 'members_confusion.png').is_file()
  assert 'Best single member' in (ensemble_dir / 'report.md').read_text()


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
  result = run_main('--config=configs/sweep_finetune.py:smoke', f'--workdir={tmp_path}',
                    '--config.sweep.backbone=inception_v3,small_cnn',
                    '--config.sweep.unfreeze=all', '--config.sweep.augmentation=none')
  assert result.returncode == 0, result.stderr[-3000:]
  rows = {row['backbone']: row for row in read_rows(tmp_path / 'results.csv')}
  assert rows['inception_v3']['status'] == 'failed'
  assert 'at least 75' in rows['inception_v3']['error']
  assert rows['small_cnn']['status'] == 'done'
  assert (tmp_path / rows['inception_v3']['run'] / 'error.txt').is_file()
