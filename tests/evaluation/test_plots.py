"""Tests of the result figures, drawn from small run files written here."""

import csv
import json

import cv2
import numpy as np
import pytest
from sklearn import metrics as skm

from mammojax.evaluation import plots, predictions

METRICS = ('loss', 'accuracy', 'precision', 'recall', 'f1', 'auc')
RESULT_COLUMNS = ('run', 'backbone', 'strategy', 'unfreeze', 'augmentation', 'weights',
                  'preprocessing', 'status', 'train_seconds', 'seconds_warmup',
                  'seconds_finetune', 'test_accuracy', 'test_auc', 'test_f1', 'val_auc',
                  'workdir')


def assert_png(path):
  image = cv2.imread(str(path))
  assert image is not None, f'{path} is not a readable PNG'
  return image.shape[:2]


def write_metrics(workdir, phases=(('warmup', 2), ('finetune', 3)), splits=('train', 'val'),
                  metrics=METRICS):
  """metrics.csv as phase_loop writes it: one row per epoch, numbered across phases."""
  workdir.mkdir(parents=True, exist_ok=True)
  columns = ['phase', 'epoch', 'epoch_in_phase', 'phase_epochs', 'lr_scale', 'seconds',
             *(f'{split}_{metric}' for split in splits for metric in metrics)]
  rows, epoch = [], 0
  for name, count in phases:
    for in_phase in range(1, count + 1):
      epoch += 1
      rows.append([name, epoch, in_phase, count, 1.0, 0.5,
                   *(0.1 * epoch for _ in splits for _ in metrics)])
  with open(workdir / 'metrics.csv', 'w', newline='') as file:
    csv.writer(file).writerows([columns, *rows])
  return workdir


def write_run(workdir, labels, probs, classes=('benign', 'malignant'), split='test',
              summary=None):
  """predictions_<split>.csv through the real writer, and summary.json when given."""
  workdir.mkdir(parents=True, exist_ok=True)
  records = [{'id': f'ex{i}', 'patient_id': f'P{i}', 'source': 'synthetic',
              'abnormality_type': 'mass'} for i in range(len(labels))]
  predictions.write_predictions(workdir / f'predictions_{split}.csv', records, labels,
                                np.asarray(probs), list(classes))
  if summary is not None:
    (workdir / 'summary.json').write_text(json.dumps(summary))
  return workdir


def write_results(path, rows):
  """A sweep's results.csv; unspecified cells get plausible values."""
  defaults = dict(run='r', strategy='finetune', augmentation='none', weights='imagenet',
                  preprocessing='default', status='done', train_seconds=10, seconds_warmup=4,
                  seconds_finetune=6, test_accuracy=0.5, test_auc=0.5, test_f1=0.5,
                  val_auc=0.5, workdir='w')
  with open(path, 'w', newline='') as file:
    writer = csv.DictWriter(file, RESULT_COLUMNS)
    writer.writeheader()
    writer.writerows({**defaults, **row} for row in rows)
  return path


# ---------------------------------------------------------------- training curves

def test_training_curves_six_panels_train_and_val_with_phase_boundaries(tmp_path):
  workdir = write_metrics(tmp_path / 'run', phases=(('warmup', 2), ('finetune', 3),
                                                    ('unfreeze_all', 1)))
  (workdir / 'summary.json').write_text(json.dumps(
      {'backbone': 'resnet50', 'strategy': 'finetune', 'weights': '/w/resnet50_notop.h5',
       'phases': [{'unfreeze': '0'}, {'unfreeze': '4'}, {'unfreeze': 'all'}]}))
  path = tmp_path / 'plots' / 'curves.png'
  result = plots.training_curves(workdir, path)
  assert result == {'panels': 6, 'lines': 12, 'phases': ['warmup', 'finetune', 'unfreeze_all'],
                    'boundaries': 2}
  height, width = assert_png(path)
  assert width > height  # 3 columns × 2 rows


def test_training_curves_draw_the_columns_there_are(tmp_path):
  workdir = write_metrics(tmp_path / 'run', phases=(('scratch', 3),), splits=('train',))
  result = plots.training_curves(workdir, tmp_path / 'curves.png')
  assert result['lines'] == 6 and result['boundaries'] == 0 and result['phases'] == ['scratch']


def test_training_curves_name_the_missing_file_or_column(tmp_path):
  with pytest.raises(FileNotFoundError, match='metrics.csv'):
    plots.training_curves(tmp_path / 'nowhere', tmp_path / 'curves.png')
  workdir = write_metrics(tmp_path / 'run', metrics=('loss', 'accuracy', 'auc'))
  with pytest.raises(ValueError, match='neither train_precision nor val_precision'):
    plots.training_curves(workdir, tmp_path / 'curves.png')
  assert not (tmp_path / 'curves.png').exists()


# ---------------------------------------------------------------- training time

def test_training_time_stacks_phases_per_network_and_unfrozen_blocks(tmp_path):
  results = write_results(tmp_path / 'results.csv', [
      dict(backbone='resnet50', unfreeze='2', seconds_warmup=10, seconds_finetune=20),
      dict(backbone='resnet50', unfreeze='2', seconds_warmup=30, seconds_finetune=40),
      dict(backbone='resnet50', unfreeze='all', seconds_warmup=10, seconds_finetune=90),
      dict(backbone='mobilenet', unfreeze='10', seconds_warmup=0, seconds_finetune=5),
      dict(backbone='mobilenet', unfreeze='2', status='failed', seconds_warmup=999),
  ])
  path = tmp_path / 'time.png'
  result = plots.training_time_bars(results, path)
  # resnet50: 2 bars × 2 phases; mobilenet '10': warmup of 0 s is not drawn.
  assert result['segments'] == 5
  assert result['bars'] == {('resnet50', '2'): 50.0, ('resnet50', 'all'): 100.0,
                            ('mobilenet', '10'): 5.0}
  assert result['phases'] == ['warmup', 'finetune'] and result['excluded'] == 1
  assert_png(path)


def test_training_time_falls_back_to_total_seconds(tmp_path):
  path = tmp_path / 'results.csv'
  with open(path, 'w', newline='') as file:
    file.write('run,backbone,unfreeze,status,train_seconds\n'
               'a,vgg16,4,done,12\nb,vgg16,all,done,20\n')
  result = plots.training_time_bars(path, tmp_path / 'time.png')
  assert result['segments'] == 2 and result['phases'] == ['train_seconds']
  assert result['bars'] == {('vgg16', '4'): 12.0, ('vgg16', 'all'): 20.0}


def test_training_time_without_finished_runs(tmp_path):
  results = write_results(tmp_path / 'results.csv',
                          [dict(backbone='resnet50', unfreeze='2', status='failed')])
  with pytest.raises(ValueError, match='results.csv has no finished run'):
    plots.training_time_bars(results, tmp_path / 'time.png')


# ---------------------------------------------------------------- accuracy bars

@pytest.fixture
def sweep_results(tmp_path):
  return write_results(tmp_path / 'results.csv', [
      dict(backbone='resnet50', weights='random', unfreeze='2', test_accuracy=0.6),
      dict(backbone='resnet50', weights='imagenet', unfreeze='2', test_accuracy=0.8),
      dict(backbone='resnet50', weights='imagenet', unfreeze='all', test_accuracy=0.9),
      dict(backbone='densenet121', weights='imagenet', unfreeze='all', test_accuracy=0.7),
      dict(backbone='densenet121', weights='autoencoder', unfreeze='all', test_accuracy=0.4,
           status='failed'),
  ])


def test_accuracy_bars_by_weights(sweep_results, tmp_path):
  result = plots.accuracy_bars(sweep_results, tmp_path / 'acc.png', by='weights')
  assert result['bars'] == 3
  assert result['values'] == pytest.approx({('resnet50', 'imagenet'): 0.85,
                                            ('resnet50', 'random'): 0.6,
                                            ('densenet121', 'imagenet'): 0.7})
  assert_png(tmp_path / 'acc.png')


def test_accuracy_bars_by_unfrozen_blocks_and_other_metric(sweep_results, tmp_path):
  result = plots.accuracy_bars(sweep_results, tmp_path / 'acc.png', by='unfreeze')
  assert result['values'] == pytest.approx({('resnet50', '2'): 0.7, ('resnet50', 'all'): 0.9,
                                            ('densenet121', 'all'): 0.7})
  result = plots.accuracy_bars(sweep_results, tmp_path / 'auc.png', metric='test_auc')
  assert set(result['values'].values()) == {0.5}


def test_accuracy_bars_reject_unknown_grouping_or_metric(sweep_results, tmp_path):
  with pytest.raises(ValueError, match="by='augmentation'"):
    plots.accuracy_bars(sweep_results, tmp_path / 'acc.png', by='augmentation')
  with pytest.raises(ValueError, match=r"results.csv lacks the column\(s\) \['test_iou'\]"):
    plots.accuracy_bars(sweep_results, tmp_path / 'acc.png', metric='test_iou')


# ---------------------------------------------------------------- confusion grid

def test_confusion_grid_one_panel_per_run_from_summary_or_predictions(tmp_path):
  summary_confusion = {'classes': ['benign', 'malignant'], 'counts': [[5, 1], [2, 4]],
                       'row_percent': [[83.33, 16.67], [33.33, 66.67]]}
  resnet = write_run(tmp_path / 'resnet', [0, 1], [[0.9, 0.1], [0.2, 0.8]],
                     summary={'test': {'confusion': summary_confusion}})
  # An ensemble run with predictions only: the matrix comes from its CSV.
  ensemble = write_run(tmp_path / 'ensemble', [0, 0, 1, 1, 1],
                       [[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
  path = tmp_path / 'confusion.png'
  result = plots.confusion_grid({'resnet50': resnet, 'ensemble': ensemble}, path)
  assert result == {'panels': 2, 'counts': {'resnet50': [[5, 1], [2, 4]],
                                            'ensemble': [[1, 1], [1, 2]]}}
  height, width = assert_png(path)
  assert width > height  # two panels side by side


def test_confusion_grid_names_the_run_without_files(tmp_path):
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='empty has neither a val confusion'):
    plots.confusion_grid({'x': tmp_path / 'empty'}, tmp_path / 'c.png', split='val')
  with pytest.raises(ValueError, match='No runs given'):
    plots.confusion_grid({}, tmp_path / 'c.png')


# ---------------------------------------------------------------- ROC curves

def test_roc_binary_one_curve_per_run_with_its_auc(tmp_path):
  labels = [0, 0, 1, 1, 0, 1]
  good = [[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.1, 0.9]]
  poor = [[0.4, 0.6], [0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.5, 0.5]]
  runs = {'good': write_run(tmp_path / 'good', labels, good),
          'poor': write_run(tmp_path / 'poor', labels, poor)}
  result = plots.roc_curves(runs, tmp_path / 'roc.png')
  assert result['panels'] == 1 and result['curves'] == 2 and result['skipped'] == []
  assert result['aucs'][('good', 'malignant')] == pytest.approx(1.0)
  assert result['aucs'][('poor', 'malignant')] == pytest.approx(
      skm.roc_auc_score(labels, np.asarray(poor)[:, 1]))
  assert_png(tmp_path / 'roc.png')


def test_roc_multiclass_one_vs_rest_panels(tmp_path):
  labels = [0, 1, 2, 0, 1, 2]
  probs = np.random.default_rng(0).dirichlet(np.ones(3), size=6)
  run = write_run(tmp_path / 'run', labels, probs, classes=('normal', 'benign', 'malignant'))
  result = plots.roc_curves({'densenet': run}, tmp_path / 'roc.png')
  assert result['panels'] == 3 and result['curves'] == 3
  for index, name in enumerate(('normal', 'benign', 'malignant')):
    assert result['aucs'][('densenet', name)] == pytest.approx(
        skm.roc_auc_score(np.asarray(labels) == index, probs[:, index]))


def test_roc_undefined_when_the_split_has_one_class(tmp_path):
  run = write_run(tmp_path / 'run', [0, 0], [[0.9, 0.1], [0.6, 0.4]])
  with pytest.raises(ValueError, match='every test label is not malignant'):
    plots.roc_curves({'r': run}, tmp_path / 'roc.png')


# ---------------------------------------------------------------- confident examples

@pytest.fixture
def confident_run(tmp_path):
  labels = [0, 1, 1, 0, 1, 0]
  probs = [[0.95, 0.05], [0.3, 0.7], [0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.55, 0.45]]
  return write_run(tmp_path / 'run', labels, probs)


def test_confident_ids_rank_right_and_wrong_by_probability(confident_run):
  chosen = plots.confident_ids(confident_run, k=2)
  assert [item['id'] for item in chosen['right']] == ['ex0', 'ex4']
  assert [item['id'] for item in chosen['wrong']] == ['ex2', 'ex3']
  assert chosen['wrong'][0] == {'id': 'ex2', 'true': 'malignant', 'pred': 'benign',
                                'prob': pytest.approx(0.9)}


def test_confident_examples_two_rows_of_k(confident_run, tmp_path):
  images = {f'ex{i}': np.full((48, 64), i, np.float32) for i in range(6)}
  path = tmp_path / 'confident.png'
  result = plots.confident_examples(confident_run, images, path, k=3)
  assert result == {'panels': 5, 'right': 3, 'wrong': 2}  # only two wrong predictions
  height, width = assert_png(path)
  assert width > height  # 3 columns × 2 rows


def test_confident_examples_name_missing_images(confident_run, tmp_path):
  with pytest.raises(ValueError, match=r"No image given for \['ex3'\]"):
    plots.confident_examples(confident_run, {f'ex{i}': np.zeros((48, 64)) for i in (0, 2, 4)},
                             tmp_path / 'c.png', k=2)
  with pytest.raises(ValueError, match='k=0'):
    plots.confident_ids(confident_run, k=0)
