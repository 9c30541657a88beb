"""Two local processes (2 CPU devices each) through jax.distributed train like one,
and stop together when only one of them is preempted."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO


def free_port() -> int:
  with socket.socket() as sock:
    sock.bind(('localhost', 0))
    return sock.getsockname()[1]


def read_losses(workdir):
  with open(workdir / 'metrics.csv', newline='') as file:
    return np.array([[float(r['train_loss']), float(r['val_loss'])]
                     for r in csv.DictReader(file)])


def start_processes(workdir, port, logs):
  """Both processes of a 2×2-device smoke run; stderr goes to ``logs[i]``."""
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=2'}
  return [subprocess.Popen(
      [sys.executable, '-m', 'mammojax.main', '--config=configs/finetune.py:smoke',
       f'--workdir={workdir}', f'--coordinator_address=localhost:{port}',
       '--num_processes=2', f'--process_id={index}'],
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)
      for index, log in enumerate(logs)]


def finish(processes, log_paths):
  for process in processes:
    process.wait(timeout=600)
  errors = [path.read_text() for path in log_paths]
  assert [p.returncode for p in processes] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
  return errors


def test_two_processes_survive_sigterm_to_one_and_end_like_one_process(tmp_path, smoke_run):
  """SIGTERM reaches process 1 only: both stop after the same step, checkpoint and
  exit cleanly; restarted, they end with the single-process run's losses."""
  workdir = tmp_path / 'two_processes'
  log_paths = [tmp_path / f'process{i}.log' for i in range(2)]
  with open(log_paths[0], 'w') as log0, open(log_paths[1], 'w') as log1:
    processes = start_processes(workdir, free_port(), [log0, log1])
    deadline = time.monotonic() + 600
    while 'phase finetune epoch 1/2' not in log_paths[0].read_text():
      assert time.monotonic() < deadline and processes[0].poll() is None, \
          log_paths[0].read_text()[-2000:]
      time.sleep(0.1)
    processes[1].send_signal(signal.SIGTERM)
    errors = finish(processes, log_paths)
  stops = [re.search(r'stopped in phase \w+, epoch \d+, after batch \d+ \(step \d+\)', e)
           for e in errors]
  assert all(stops), errors[0][-2000:] + errors[1][-2000:]
  assert stops[0].group(0) == stops[1].group(0)  # the same step on both processes
  assert not (workdir / 'summary.json').exists()

  with open(log_paths[0], 'w') as log0, open(log_paths[1], 'w') as log1:
    finish(start_processes(workdir, free_port(), [log0, log1]), log_paths)
  # Validation losses of every epoch (the preempted epoch's train loss covers only the
  # batches after the resume).
  np.testing.assert_allclose(read_losses(workdir)[:, 1], read_losses(smoke_run[0])[:, 1],
                             rtol=5e-3)
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['test']['auc'] == pytest.approx(smoke_run[1]['test']['auc'], abs=1e-3)
  assert (workdir / 'report.md').is_file()  # written by process 0 only, without a deadlock
