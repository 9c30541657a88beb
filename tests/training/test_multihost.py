"""Two local processes (2 CPU devices each) through jax.distributed train like one."""

import csv
import json
import os
import socket
import subprocess
import sys

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


def test_two_processes_end_like_the_single_process_run(tmp_path, smoke_run):
  workdir, port = tmp_path / 'two_processes', free_port()
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=2'}
  processes = [subprocess.Popen(
      [sys.executable, '-m', 'mammojax.main', '--config=configs/finetune.py:smoke',
       f'--workdir={workdir}', f'--coordinator_address=localhost:{port}',
       '--num_processes=2', f'--process_id={index}'],
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
      for index in range(2)]
  errors = [process.communicate(timeout=600)[1] for process in processes]
  assert [p.returncode for p in processes] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
  np.testing.assert_allclose(read_losses(workdir), read_losses(smoke_run[0]), rtol=5e-3)
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['test']['auc'] == pytest.approx(smoke_run[1]['test']['auc'], abs=1e-3)
  assert (workdir / 'report.md').is_file()  # written by process 0 only, without a deadlock
