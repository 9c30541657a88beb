"""benchmarks/ours.py measures our real step; run.py turns results into ratios and MFU."""

import subprocess
import sys

import pytest

from benchmarks import run, timing
from tests.conftest import REPO


def run_ours(*args):
  done = subprocess.run([sys.executable, 'benchmarks/ours.py', *args, '--windows', '1',
                         '--steps-per-window', '1', '--warmup', '0'], cwd=REPO,
                        capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  [result] = timing.parse_results(done.stdout)
  return result


def test_ours_times_the_training_step_and_counts_its_flops():
  result = run_ours('--measure', 'step', '--net', 'small_cnn', '--size', '32', '--batch', '4')
  assert result['images_per_second'] > 0 and result['first_step_seconds'] > 0
  assert result['params'] > 100_000  # the small CNN and its head
  # Forward + backward of a 32×32 small CNN: tens of MFLOPs per image, not zero.
  assert 1e6 < result['flops_per_image'] < 1e9


def test_ours_times_an_async_checkpoint_save():
  result = run_ours('--measure', 'checkpoint', '--net', 'small_cnn', '--size', '32',
                    '--batch', '4')
  assert 0 < result['save_blocked_seconds'] <= result['save_written_seconds']
  assert result['checkpoint_mb'] > 1  # parameters and Adam moments of ~300k floats


def test_a_training_row_gives_ratios_and_utilisation():
  ours = {'images_per_second': 30.0, 'flops_per_image': 2e9, 'first_step_seconds': 9.0,
          'peak_rss_mb': 900.0}
  peers = {'keras': {'images_per_second': 15.0, 'first_step_seconds': 20.0,
                     'peak_rss_mb': 1500.0},
           'torch': {'images_per_second': 40.0, 'first_step_seconds': 0.5, 'peak_rss_mb': 700.0,
                     'channels_last': True}}
  row = run.training_row('resnet50', 128, 16, 'float32', ours, peers,
                         {('jax', 'float32'): 200.0, ('torch', 'float32'): 300.0})
  assert row['ours_over_keras'] == pytest.approx(2.0)
  assert row['ours_over_torch'] == pytest.approx(0.75)
  assert row['mammojax_mfu'] == pytest.approx(30 * 2e9 / 300e9)  # the higher peak counts
  table = run.training_table([row])
  assert '| resnet50 | 128 | 16 | float32 | 30.0 | 15.0 | 40.0 (channels-last) | 2.00 | 0.75 |' \
      in table


def test_profile_splits_the_step_by_kind_of_operation():
  done = subprocess.run([sys.executable, 'benchmarks/profile_step.py', '--net', 'small_cnn',
                         '--size', '32', '--batch', '4', '--steps', '1'], cwd=REPO,
                        capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  [result] = timing.parse_results(done.stdout)
  by_kind = result['ms_per_step_by_kind']
  assert by_kind['convolution'] > 0  # the small CNN's 3×3 convolutions
  assert set(by_kind) <= {'convolution', 'matmul', 'pooling', 'reduction', 'layout copy',
                          'elementwise/other'}
  assert len(result['slowest']) == 10 and all(s['ms'] > 0 for s in result['slowest'])
  assert '| kind | ms per step | share |' in done.stdout


def test_torch_operators_are_sorted_into_kinds():
  from benchmarks import profile_step  # pylint: disable=import-outside-toplevel
  assert profile_step.torch_kind('aten::mkldnn_convolution') == 'convolution'
  assert profile_step.torch_kind('aten::convolution_backward') == 'convolution'
  assert profile_step.torch_kind('aten::addmm') == 'matmul'
  assert profile_step.torch_kind('aten::native_batch_norm_backward') == 'batchnorm'
  assert profile_step.torch_kind('aten::max_pool2d_with_indices') == 'pooling'
  assert profile_step.torch_kind('aten::threshold_backward') == 'elementwise/other'


def test_profile_of_the_torch_peer_splits_its_step_by_kind():
  pytest.importorskip('torch')  # an optional benchmark dependency ('.[bench]')
  done = subprocess.run([sys.executable, 'benchmarks/profile_step.py', '--framework', 'torch',
                         '--net', 'unet', '--size', '32', '--batch', '2', '--steps', '1'],
                        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  [result] = timing.parse_results(done.stdout)
  assert result['framework'] == 'torch'
  by_kind = result['ms_per_step_by_kind']
  assert by_kind['convolution'] > 0 and by_kind['batchnorm'] > 0  # the U-Net's conv-BN-ReLU
  assert sum(by_kind.values()) >= sum(s['ms'] for s in result['slowest'])
