"""Pooled features → scikit-learn writes the same files as a network run."""

import csv
import json

import pytest

from mammojax import classical
from tests.conftest import run_main


@pytest.mark.parametrize('name', ['svm', 'logistic_regression', 'gradient_boosting'])
def test_classical_run_writes_run_outputs(tmp_path, name):
  result = run_main('--config=configs/feature_extraction.py:smoke', f'--workdir={tmp_path}',
                    f'--config.classical={name}')
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / 'summary.json').read_text())
  assert summary['classifier'] == name and summary['feature_size'] == 128
  assert 0.0 <= summary['test']['auc'] <= 1.0
  with open(tmp_path / 'metrics.csv', newline='') as file:
    rows = list(csv.DictReader(file))
  assert len(rows) == 1 and rows[0]['phase'] == name
  with open(tmp_path / 'predictions_test.csv', newline='') as file:
    assert len(list(csv.DictReader(file))) == sum(summary['test']['confusion']['counts'][0]) + \
        sum(summary['test']['confusion']['counts'][1])


def test_unknown_classical_model_lists_choices():
  with pytest.raises(ValueError, match=r"valid choices: \['gradient_boosting'"):
    classical.make_classifier('random_forest', seed=0)
