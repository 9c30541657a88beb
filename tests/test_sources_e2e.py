"""End to end on a non-default source: a chest_xray folder tree, whole images, 2 classes."""

import csv
import json

from tests.conftest import run_main
from tests.data.test_datasets import write_chest_xray


def test_smoke_run_on_a_chest_xray_folder_tree(tmp_path):
  root = write_chest_xray(tmp_path / 'chest_xray', per_class=12)
  workdir = tmp_path / 'run'
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}',
                    '--config.data.source=folders', f'--config.data.root={root}',
                    '--config.data.balance=batches', '--config.data.augmentation=flip_rotate_zoom')
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads((workdir / 'data_report.json').read_text())
  assert report['classes'] == ['NORMAL', 'PNEUMONIA']
  assert report['counts']['train'] == {'chest_xray': {'NORMAL': 12, 'PNEUMONIA': 12}}
  with open(workdir / 'predictions_test.csv', newline='') as file:
    rows = list(csv.DictReader(file))
  assert len(rows) == 6 and {'prob_NORMAL', 'prob_PNEUMONIA'} <= set(rows[0])
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['test']['confusion']['classes'] == ['NORMAL', 'PNEUMONIA']
