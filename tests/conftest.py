"""Shared fixtures: one isolated cache, and one smoke training run per session."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from mammojax import runtime

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session', autouse=True)
def isolated_cache(tmp_path_factory):
  """Synthetic data, patches and compiled steps cached per test session."""
  cache = tmp_path_factory.mktemp('mammojax_cache')
  os.environ['MAMMOJAX_CACHE'] = str(cache)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = str(cache / 'jax_cache')
  runtime.enable_compilation_cache(str(cache / 'jax_cache'))  # in-process tests too
  return cache


def run_main(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
  """Runs ``python -m mammojax.main ARGS`` from the repository root."""
  return subprocess.run([sys.executable, '-m', 'mammojax.main', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope='session')
def smoke_run(tmp_path_factory, isolated_cache):
  """An uninterrupted ``configs/finetune.py:smoke`` run: (workdir, summary)."""
  workdir = tmp_path_factory.mktemp('smoke_run')
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, json.loads((workdir / 'summary.json').read_text())
