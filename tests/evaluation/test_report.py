import json

import numpy as np
import pytest

from mammojax.evaluation import report


def _table_cells(markdown: str) -> list[list[str]]:
  """The markdown table as rows of cell texts (header first, rule line dropped)."""
  lines = markdown.strip().splitlines()
  return [[cell.strip() for cell in line.strip('|').split('|')]
          for i, line in enumerate(lines) if i != 1]


def _sweep_rows():
  return [
      {'augmentation': 'none', 'unfreeze': '10', 'test_accuracy': '0.81'},
      {'augmentation': 'none', 'unfreeze': '2', 'test_accuracy': '0.78'},
      {'augmentation': 'flip_hv', 'unfreeze': 'all', 'test_accuracy': 0.86},
      {'augmentation': 'flip_hv', 'unfreeze': '2', 'test_accuracy': 0.84123},
      {'augmentation': 'brightness', 'unfreeze': '10', 'test_accuracy': ''},  # failed point
  ]


def test_results_table_bolds_the_best_cell_and_sorts_numeric_aware():
  cells = _table_cells(report.results_table(
      _sweep_rows(), row_key='augmentation', col_key='unfreeze', value_key='test_accuracy'))
  assert cells[0] == ['augmentation \\ unfreeze', '2', '10', 'all']
  assert [row[0] for row in cells[1:]] == ['brightness', 'flip_hv', 'none']
  assert cells[1] == ['brightness', '—', '—', '—']
  assert cells[2] == ['flip_hv', '0.8412', '—', '**0.8600**']
  assert cells[3] == ['none', '0.7800', '0.8100', '—']


def test_results_table_bolds_every_tie_and_honours_fmt_and_min():
  rows = [{'a': 'x', 'b': 1, 'v': 0.5}, {'a': 'y', 'b': 1, 'v': 0.50004},  # reads the same: a tie
          {'a': 'y', 'b': 2, 'v': 0.25}, {'a': 'x', 'b': 2, 'v': np.nan}]
  cells = _table_cells(report.results_table(rows, row_key='a', col_key='b', value_key='v',
                                            fmt='{:.1%}'))
  assert cells[1:] == [['x', '**50.0%**', '—'], ['y', '**50.0%**', '25.0%']]
  lowest = _table_cells(report.results_table(rows, row_key='a', col_key='b', value_key='v',
                                             best='min'))
  assert lowest[2] == ['y', '0.5000', '**0.2500**']


def test_results_table_refuses_duplicates_and_bad_values():
  rows = [{'a': 'x', 'b': '2', 'v': 0.1}, {'a': 'x', 'b': '2', 'v': 0.2}]
  with pytest.raises(ValueError, match='Two results rows for a=x, b=2'):
    report.results_table(rows, row_key='a', col_key='b', value_key='v')
  with pytest.raises(ValueError, match="Results row 0, 'v': 'high' is not a number"):
    report.results_table([{'a': 'x', 'b': '2', 'v': 'high'}], row_key='a', col_key='b',
                         value_key='v')
  with pytest.raises(ValueError, match="Results row 0 has no 'b'"):
    report.results_table([{'a': 'x', 'v': 0.1}], row_key='a', col_key='b', value_key='v')
  assert report.results_table([], row_key='a', col_key='b', value_key='v') == '_No results._'


def test_sort_key_orders_numbers_before_text():
  assert sorted(['all', '10', '2', '0', 'b', '2.5'], key=report.sort_key) == [
      '0', '2', '2.5', '10', 'all', 'b']


def _summary(**overrides):
  summary = {
      'strategy': 'finetune', 'backbone': 'resnet50', 'weights': 'imagenet',
      'train_seconds': 125.4, 'best_val_auc': 0.9,
      'phases': [{'trainable_params': 1050}, {'trainable_params': 23_500_000}],
      'val': {'auc': 0.91234}, 'test': {'accuracy': 0.875, 'auc': 0.93, 'f1': 0.8}}
  summary.update(overrides)
  return summary


def test_run_metrics_table_shows_one_row_per_run():
  cells = _table_cells(report.run_metrics_table({
      'resnet': _summary(),
      'ens': _summary(strategy='ensemble', method='stacking', backbone='a+b', train_seconds=0.42,
                      test={'accuracy': 0.9, 'auc': float('nan')}),
  }))
  assert cells[0] == list(report.RUN_COLUMNS)
  assert cells[1] == ['resnet', 'resnet50', 'finetune', 'imagenet', '23,500,000', '2m05s',
                      '0.9123', '0.8750', '0.9300', '0.8000']
  assert cells[2] == ['ens', 'a+b', 'ensemble (stacking)', 'imagenet', '23,500,000', '0.4 s',
                      '0.9123', '0.9000', '—', '—']


def test_run_metrics_table_tolerates_missing_fields():
  cells = _table_cells(report.run_metrics_table({'bare': {'strategy': 'scratch'}}))
  assert cells[1] == ['bare', '—', 'scratch', '—', '—', '—', '—', '—', '—', '—']
  assert report.format_seconds(3725) == '1h02m'


def test_read_summaries_names_missing_files(tmp_path):
  (tmp_path / 'run_a').mkdir()
  (tmp_path / 'run_a' / 'summary.json').write_text(json.dumps(_summary()))
  assert report.read_summaries([tmp_path / 'run_a'])['run_a']['backbone'] == 'resnet50'
  with pytest.raises(FileNotFoundError, match=r'run_b.summary.json not found'):
    report.read_summaries([tmp_path / 'run_a', tmp_path / 'run_b'])


def test_write_report_links_figures_relatively_and_lists_missing_ones(tmp_path, monkeypatch):
  run = tmp_path / 'run'
  (run / 'plots').mkdir(parents=True)
  (run / 'plots' / 'curves.png').write_bytes(b'png')
  (run / 'plots' / 'my confusion.png').write_bytes(b'png')
  monkeypatch.chdir(tmp_path)  # relative figure paths are relative to the current folder
  path = report.write_report(run / 'report.md', title='Run report', sections=[
      ('Results', '| a |\n| --- |\n| 1 |'),
      ('Figures', [run / 'plots' / 'curves.png', 'run/plots/my confusion.png',
                   run / 'plots' / 'time.png']),
  ])
  text = path.read_text()
  assert text.startswith('# Run report\n')
  assert '## Results\n\n| a |\n| --- |\n| 1 |\n' in text
  assert '![curves](plots/curves.png)' in text
  assert '![my confusion](<plots/my confusion.png>)' in text
  assert '](plots/time.png)' not in text
  assert 'Missing figures' in text and '- `plots/time.png`' in text
  assert str(tmp_path) not in text  # no absolute paths: the run folder can move


def test_results_csv_round_trip_keeps_the_union_of_columns(tmp_path):
  rows = [{'run': 'a', 'status': 'done', 'val_auc': 0.9},
          {'run': 'b', 'status': 'failed', 'error': 'ValueError: x'},
          {'run': 'c', 'val_auc': 0.7, 'seconds_warmup': 12.5}]
  path = tmp_path / 'results.csv'
  report.write_results_csv(path, rows)
  assert path.read_text().splitlines()[0] == 'run,status,val_auc,error,seconds_warmup'
  read = report.read_results_csv(path)
  assert read[0] == {'run': 'a', 'status': 'done', 'val_auc': '0.9', 'error': '',
                     'seconds_warmup': ''}
  assert read[2]['seconds_warmup'] == '12.5'
  assert not list(tmp_path.glob('*.tmp'))
  with pytest.raises(FileNotFoundError, match='nowhere.csv not found'):
    report.read_results_csv(tmp_path / 'nowhere.csv')
