"""End to end: segmentation smoke run, its outputs, evaluate and predict modes."""

import csv
import json

import cv2
import numpy as np
import pytest

from mammojax.evaluation import rle
from tests.conftest import run_main


@pytest.fixture(scope='module')
def segmentation_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('segmentation')
  result = run_main('--config=configs/segmentation.py:smoke', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_smoke_run_writes_scores_threshold_and_panels(segmentation_run):
  summary = json.loads((segmentation_run / 'summary.json').read_text())
  assert summary['task'] == 'segmentation' and 0.1 <= summary['threshold'] <= 0.9
  for split in ('val', 'test'):
    for key in ('dice', 'iou', 'dice_overall', 'iou_overall', 'pixel_accuracy'):
      assert 0.0 <= summary[split][key] <= 1.0, (split, key)
    assert 'dice' in summary[split]['postprocessed']
  with open(segmentation_run / 'predictions_test.csv', newline='') as file:
    rows = list(csv.DictReader(file))
  assert len(rows) == summary['test']['images'] > 0
  assert {'id', 'dice', 'iou', 'true_pixels', 'predicted_pixels'} <= set(rows[0])
  plots = segmentation_run / 'plots'
  assert (plots / 'segmentation_epoch001.png').is_file()  # panels every epoch in smoke
  assert (plots / 'segmentation_epoch002.png').is_file() and (plots / 'test_masks.png').is_file()
  with open(segmentation_run / 'metrics.csv', newline='') as file:
    assert [r['phase'] for r in csv.DictReader(file)] == ['train', 'train']
  report = (segmentation_run / 'report.md').read_text()
  assert '| test |' in report and '](plots/test_masks.png)' in report


def test_evaluate_mode_rescoring_gives_the_same_summary(segmentation_run):
  before = json.loads((segmentation_run / 'summary.json').read_text())
  result = run_main('--config=configs/segmentation.py:smoke', f'--workdir={segmentation_run}',
                    '--mode=evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  after = json.loads((segmentation_run / 'summary.json').read_text())
  assert after['test'] == before['test'] and after['threshold'] == before['threshold']


def test_predict_writes_masks_and_the_same_csv_for_any_batch_size(segmentation_run, tmp_path):
  images = tmp_path / 'new'
  images.mkdir()
  rng = np.random.default_rng(0)
  for index in range(3):
    image = rng.integers(0, 120, (70 + 9 * index, 55)).astype(np.uint8)
    cv2.circle(image, (25, 30), 8, 230, -1)
    cv2.imwrite(str(images / f'case{index}.png'), image)
  outputs = {}
  for batch_size in (1, 7):
    output = tmp_path / f'batch{batch_size}' / 'submission.csv'
    result = run_main('--config=configs/segmentation.py:smoke', f'--workdir={segmentation_run}',
                      '--mode=predict', f'--input={images}', f'--output={output}',
                      f'--config.data.eval_batch_size={batch_size}')
    assert result.returncode == 0, result.stderr[-3000:]
    outputs[batch_size] = output
  assert outputs[1].read_bytes() == outputs[7].read_bytes()
  with open(outputs[1], newline='') as file:
    rows = list(csv.DictReader(file))
  assert [r['id'] for r in rows] == ['case0', 'case1', 'case2']
  for index, row in enumerate(rows):  # masks come back at each image's own size
    mask = cv2.imread(str(outputs[1].parent / 'masks' / f'case{index}.png'), 0)
    assert mask.shape == (70 + 9 * index, 55)
    np.testing.assert_array_equal(rle.rle_decode(row['rle_mask'], mask.shape), mask > 0)


def test_classifier_crops_lesions_by_the_predicted_masks(segmentation_run, tmp_path):
  workdir = tmp_path / 'classifier'
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}',
                    f'--config.data.roi_from={segmentation_run}',
                    f'--config.data.region_from={segmentation_run}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'masks predicted by' in result.stderr
  report = json.loads((workdir / 'data_report.json').read_text())
  kept = sum(sum(c.values()) for split in report['counts'].values() for c in split.values())
  assert kept > 0 and kept + report['num_skipped'] >= 51  # every smoke lesion accounted for
  again = run_main('--config=configs/finetune.py:smoke', f'--workdir={tmp_path / "again"}',
                   f'--config.data.roi_from={segmentation_run}',
                   f'--config.data.region_from={segmentation_run}')
  assert again.returncode == 0 and '0 masks predicted' in again.stderr  # read from the cache


@pytest.mark.parametrize('variant', ['attention', 'unpadded'])
def test_attention_and_unpadded_variants_run(tmp_path, variant):
  workdir = tmp_path / variant
  result = run_main(f'--config=configs/segmentation.py:smoke,{variant}', f'--workdir={workdir}',
                    '--config.phases.train.epochs=1')
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['architecture'] == ('attention_unet' if variant == 'attention' else 'unet')
  assert 0.0 <= summary['test']['dice'] <= 1.0


def test_a_window_the_unpadded_net_cannot_take_is_explained(tmp_path):
  result = run_main('--config=configs/segmentation.py:smoke,unpadded', f'--workdir={tmp_path}',
                    '--config.data.window=45')
  assert result.returncode == 2 and 'data.window=45' in result.stderr
  assert '44' in result.stderr  # the nearest valid window is named
