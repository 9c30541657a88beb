import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score

from mammojax.evaluation.segmentation_metrics import (best_threshold, dice, iou,
                                                       segmentation_metrics)


def _random_set(seed, n=4, height=12, width=16):
  rng = np.random.default_rng(seed)
  probs = rng.random((n, height, width))
  masks = (rng.random((n, height, width)) < 0.4).astype(np.uint8)
  return probs, masks


def test_dice_and_iou_hand_computed():
  pred = np.zeros((3, 3), np.uint8)
  true = np.zeros((3, 3), np.uint8)
  pred[0, :3] = 1          # 3 predicted pixels
  true[0, 2] = true[1, 2] = 1  # 2 true pixels, 1 shared
  assert dice(pred, true) == pytest.approx(2 * 1 / (3 + 2))
  assert iou(pred, true) == pytest.approx(1 / 4)


def test_empty_versus_empty_is_one_and_empty_versus_lesion_is_zero():
  empty = np.zeros((5, 4), bool)
  lesion = empty.copy()
  lesion[2, 2] = True
  assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
  assert dice(empty, lesion) == 0.0 and iou(lesion, empty) == 0.0


def test_overall_scores_match_scikit_learn_on_flattened_masks():
  probs, masks = _random_set(0)
  result = segmentation_metrics(probs, masks, threshold=0.6)
  pred = (probs >= 0.6).ravel()
  assert result['dice_overall'] == pytest.approx(f1_score(masks.ravel(), pred))
  assert result['iou_overall'] == pytest.approx(jaccard_score(masks.ravel(), pred))
  assert result['pixel_accuracy'] == pytest.approx(accuracy_score(masks.ravel(), pred))


def test_per_image_scores_are_means_of_scikit_learn_per_image():
  probs, masks = _random_set(1)
  result = segmentation_metrics(probs[..., None], masks[..., None], threshold=0.5)
  pred = probs >= 0.5
  expected_dice = np.mean([f1_score(m.ravel(), p.ravel()) for m, p in zip(masks, pred)])
  expected_iou = np.mean([jaccard_score(m.ravel(), p.ravel()) for m, p in zip(masks, pred)])
  assert result['dice'] == pytest.approx(expected_dice)
  assert result['iou'] == pytest.approx(expected_iou)


def test_per_image_mean_differs_from_pooled_score():
  # Image 0: one-pixel lesion found exactly; image 1: 8-pixel lesion, half found.
  masks = np.zeros((2, 4, 4), np.uint8)
  probs = np.zeros((2, 4, 4))
  masks[0, 0, 0] = 1
  probs[0, 0, 0] = 0.9
  masks[1, :2, :] = 1
  probs[1, 0, :] = 0.9
  result = segmentation_metrics(probs, masks, threshold=0.5)
  assert result['dice'] == pytest.approx((1.0 + 2 * 4 / 12) / 2)
  assert result['iou'] == pytest.approx((1.0 + 4 / 8) / 2)
  assert result['dice_overall'] == pytest.approx(2 * 5 / (5 + 9))
  assert result['iou_overall'] == pytest.approx(5 / 9)
  assert result['pixel_accuracy'] == pytest.approx(28 / 32)
  assert set(result) == {'dice', 'iou', 'dice_overall', 'iou_overall', 'pixel_accuracy'}


def test_best_threshold_finds_the_first_perfect_candidate():
  masks = np.zeros((2, 6, 8), np.uint8)
  masks[0, 1:4, 2:6] = 1
  masks[1, 3:, 5:] = 1
  probs = np.where(masks == 1, 0.7, 0.3)
  probs[0, 5, 0] = 0.55  # a distractor: thresholds <= 0.55 add one false positive
  threshold, best = best_threshold(probs, masks)
  assert threshold == pytest.approx(0.6)
  assert best == pytest.approx(1.0)
  threshold, best = best_threshold(probs, masks, candidates=[0.2, 0.5])
  assert threshold == 0.5
  assert best == pytest.approx(np.mean([2 * 12 / 25, 1.0]))


def test_shape_mismatch_and_bad_rank_are_clear_errors():
  probs, masks = _random_set(2)
  with pytest.raises(ValueError, match='differs'):
    segmentation_metrics(probs, masks[:, :-1], 0.5)
  with pytest.raises(ValueError, match='probs must be'):
    segmentation_metrics(probs[0], masks[0], 0.5)
  with pytest.raises(ValueError, match='differs'):
    dice(np.zeros((2, 3)), np.zeros((3, 2)))
  with pytest.raises(ValueError, match='candidate'):
    best_threshold(probs, masks, candidates=[])
