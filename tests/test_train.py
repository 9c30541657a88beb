"""End to end: the smoke finetune run writes every output; kill + resume is exact."""

import csv
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, run_main


def read_csv(path):
  with open(path, newline='') as file:
    return list(csv.DictReader(file))


def test_smoke_run_writes_every_output(smoke_run):
  workdir, summary = smoke_run
  for name in ('config.json', 'preprocess.json', 'data_report.json', 'metrics.csv',
               'predictions_val.csv', 'predictions_test.csv', 'summary.json'):
    assert (workdir / name).is_file(), name
  assert list((workdir / 'tensorboard').glob('events.out.tfevents.*'))
  assert list((workdir / 'checkpoints' / 'latest').iterdir())
  assert list((workdir / 'checkpoints' / 'best').iterdir())
  rows = read_csv(workdir / 'metrics.csv')
  assert [r['phase'] for r in rows] == ['warmup'] * 2 + ['finetune'] * 2 + ['unfreeze_all'] * 2
  for column in ('train_loss', 'train_accuracy', 'train_precision', 'train_recall', 'train_f1',
                 'train_auc', 'val_loss', 'val_auc', 'images_per_second'):
    assert all(np.isfinite(float(r[column])) for r in rows), column
  report = json.loads((workdir / 'data_report.json').read_text())
  test_count = sum(sum(by_class.values()) for by_class in report['counts']['test'].values())
  assert report['classes'] == ['benign', 'malignant'] and report['num_skipped'] == 0
  assert (workdir / 'plots' / 'preprocess_steps.png').is_file()
  assert (workdir / 'plots' / 'augmentation.png').is_file()
  for figure in ('training_curves', 'confusion_test', 'roc_test', 'confident_examples',
                 'gradcam'):
    assert (workdir / 'plots' / f'{figure}.png').is_file(), figure
    assert f'](plots/{figure}.png)' in (workdir / 'report.md').read_text()
  assert len(read_csv(workdir / 'predictions_test.csv')) == test_count
  assert [p['name'] for p in summary['phases']] == ['warmup', 'finetune', 'unfreeze_all']
  assert summary['phases'][0]['unfrozen_blocks'] == []
  assert summary['phases'][1]['unfrozen_blocks'] == ['block2', 'block3', 'block4']
  assert 0 < summary['phases'][0]['trainable_params'] < summary['phases'][1]['trainable_params']
  assert np.sum(summary['test']['confusion']['counts']) == test_count
  assert 0.0 <= summary['test']['auc'] <= 1.0
  assert summary['weights'] == 'random'


def test_rerun_of_finished_run_gives_same_summary(smoke_run):
  workdir, summary = smoke_run
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  again = json.loads((workdir / 'summary.json').read_text())
  assert again['test'] == summary['test']
  assert len(read_csv(workdir / 'metrics.csv')) == 6


def test_evaluate_mode_rescores_the_run(smoke_run):
  workdir, summary = smoke_run
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}',
                    '--mode=evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads((workdir / 'summary.json').read_text())['test'] == summary['test']


def _kill_during_finetune(workdir) -> None:
  """Starts the smoke run and SIGKILLs it after the first fine-tuning epoch."""
  process = subprocess.Popen(
      [sys.executable, '-m', 'mammojax.main', '--config=configs/finetune.py:smoke',
       f'--workdir={workdir}'], cwd=REPO, stderr=subprocess.PIPE, text=True)
  for line in process.stderr:
    if 'phase finetune epoch 1/2' in line:
      process.send_signal(signal.SIGKILL)
      break
  process.wait(timeout=60)
  assert process.returncode == -signal.SIGKILL, 'the run ended before it could be killed'


def test_sigkill_during_finetune_then_resume_is_exact(smoke_run, tmp_path):
  workdir, reference = smoke_run
  _kill_during_finetune(tmp_path)
  assert not (tmp_path / 'summary.json').exists()
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  # Checkpoints are written in the background, and after short epochs not every epoch
  # (train.checkpoint_share): the run resumes from the newest one complete at the kill.
  assert re.search(r'Resumed from epoch [1-5] ', result.stderr), result.stderr[-3000:]
  resumed = json.loads((tmp_path / 'summary.json').read_text())
  for key in ('auc', 'accuracy', 'loss', 'f1'):
    assert resumed['test'][key] == pytest.approx(reference['test'][key], abs=1e-6), key
  ours = np.array([[float(v) for k, v in r.items() if k.startswith('prob_')]
                   for r in read_csv(tmp_path / 'predictions_test.csv')])
  theirs = np.array([[float(v) for k, v in r.items() if k.startswith('prob_')]
                     for r in read_csv(workdir / 'predictions_test.csv')])
  np.testing.assert_allclose(ours, theirs, atol=1e-6)
  assert len(read_csv(tmp_path / 'metrics.csv')) == 6


def test_a_nan_loss_stops_the_run_naming_phase_and_epoch(tmp_path):
  workdir = tmp_path / 'nan'
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}',
                    '--config.phases.finetune.learning_rate=1e30')
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'The training loss became nan in phase finetune' in result.stderr
  assert 'Traceback' not in result.stderr
  assert (workdir / 'checkpoints' / 'latest').is_dir()  # warm-up epochs were kept


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, smoke_run):
  import shutil
  workdir = tmp_path / 'corrupt'
  shutil.copytree(smoke_run[0], workdir)
  latest = workdir / 'checkpoints' / 'latest'
  older, newest = sorted(int(p.name) for p in latest.iterdir() if p.name.isdigit())
  older_epoch = json.loads((latest / str(older) / 'meta' / 'metadata').read_text())['global_epoch']
  for path in (latest / str(newest) / 'state').rglob('*'):
    if path.is_file():
      path.write_bytes(b'corrupt')
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'{newest} cannot be read' in result.stderr
  assert f'Resumed from epoch {older_epoch} ' in result.stderr
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['test']['auc'] == pytest.approx(smoke_run[1]['test']['auc'], abs=1e-6)


def _predictions(workdir):
  return (workdir / 'predictions_test.csv').read_text()


def test_preemption_mid_epoch_checkpoints_and_resumes_exactly(tmp_path, smoke_run, monkeypatch):
  from mammojax import train
  from mammojax.training import preemption
  from tests.test_main_errors import smoke_config

  class StopAfterSteps(preemption.PreemptionGuard):
    """A signal that arrives after the 8th step (inside the second epoch)."""
    checks = 0

    @property
    def requested(self):
      StopAfterSteps.checks += 1
      return StopAfterSteps.checks >= 8

    @requested.setter
    def requested(self, value):
      del value

  workdir = tmp_path / 'preempted'
  with monkeypatch.context() as patch:
    patch.setattr(preemption, 'PreemptionGuard', StopAfterSteps)
    with pytest.raises(preemption.Preempted, match='epoch 2, after batch 3'):
      train.train_and_evaluate(smoke_config(), workdir)
  summary = train.train_and_evaluate(smoke_config(), workdir)
  assert summary['test']['auc'] == pytest.approx(smoke_run[1]['test']['auc'], abs=1e-6)
  assert _predictions(workdir) == _predictions(smoke_run[0])


def test_sigterm_at_random_points_then_resume_ends_like_an_uninterrupted_run(tmp_path,
                                                                             smoke_run):
  workdir = tmp_path / 'sigterm'
  command = [sys.executable, '-m', 'mammojax.main', '--config=configs/finetune.py:smoke',
             f'--workdir={workdir}']
  rng = np.random.default_rng(7)
  for _ in range(3):
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(rng.uniform(6.0, 14.0))
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert 'Traceback' not in stderr
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert _predictions(workdir) == _predictions(smoke_run[0])
