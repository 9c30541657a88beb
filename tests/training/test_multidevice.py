"""One global batch over 4 (forced host) devices trains like 1 device."""

import csv
import os
import subprocess
import sys

import numpy as np

from tests.conftest import REPO


def smoke_losses(workdir, devices: int):
  env = {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}
  result = subprocess.run([sys.executable, '-m', 'mammojax.main',
                           '--config=configs/finetune.py:smoke', f'--workdir={workdir}'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'CpuDevice(id={devices - 1})' in result.stderr
  with open(workdir / 'metrics.csv', newline='') as file:
    rows = list(csv.DictReader(file))
  return np.array([[float(r['train_loss']), float(r['val_loss'])] for r in rows])


def test_four_devices_give_the_losses_of_one(tmp_path):
  one = smoke_losses(tmp_path / 'one', 1)
  four = smoke_losses(tmp_path / 'four', 4)
  # Same global batch, BatchNorm statistics over all of it: equal up to float
  # summation order, which SGD amplifies a little over the later epochs.
  np.testing.assert_allclose(four[:4], one[:4], rtol=1e-4)
  np.testing.assert_allclose(four, one, rtol=5e-3)
