import cv2
import numpy as np
import pytest

from mammojax.evaluation.mask_postprocess import (fill_holes, postprocess_mask,
                                                   remove_small_components)

HEIGHT, WIDTH = 48, 64


def _square_ring():
  mask = np.zeros((HEIGHT, WIDTH), np.uint8)
  mask[10:30, 20:40] = 1
  mask[13:27, 23:37] = 0
  return mask


def test_square_ring_becomes_full_square():
  filled = fill_holes(_square_ring())
  expected = np.zeros((HEIGHT, WIDTH), np.uint8)
  expected[10:30, 20:40] = 1
  np.testing.assert_array_equal(filled, expected)
  assert filled.dtype == np.uint8


def test_drawn_circle_ring_becomes_a_disc():
  ring = cv2.circle(np.zeros((HEIGHT, WIDTH), np.uint8), (32, 24), 15, 1, thickness=1)
  filled = fill_holes(ring)
  inside = cv2.circle(np.zeros_like(ring), (32, 24), 14, 1, thickness=-1)
  outside = 1 - cv2.circle(np.zeros_like(ring), (32, 24), 16, 1, thickness=-1)
  assert np.all(filled[inside == 1] == 1)  # the whole inside, despite the diagonal steps
  assert np.all(filled[outside == 1] == 0)
  assert np.all(filled[ring == 1] == 1)


def test_region_open_to_the_image_border_is_not_a_hole():
  mask = np.zeros((HEIGHT, WIDTH), np.uint8)
  mask[0:20, 0:20] = 1
  mask[0:15, 3:15] = 0  # a notch opening onto the top edge
  np.testing.assert_array_equal(fill_holes(mask), mask)


def _specks_and_blob():
  mask = np.zeros((HEIGHT, WIDTH), np.uint8)
  mask[2, 2] = 1                # 1 px speck
  mask[40:42, 5:7] = 1          # 4 px speck
  mask[10:20, 30:40] = 1        # 100 px blob
  return mask


def test_small_components_removed_and_big_blob_kept():
  cleaned = remove_small_components(_specks_and_blob(), min_area=5)
  expected = np.zeros((HEIGHT, WIDTH), np.uint8)
  expected[10:20, 30:40] = 1
  np.testing.assert_array_equal(cleaned, expected)
  kept = remove_small_components(_specks_and_blob(), min_area=4)
  assert kept.sum() == 104
  np.testing.assert_array_equal(remove_small_components(_specks_and_blob(), 0),
                                _specks_and_blob())


def test_diagonal_pixels_are_one_component():
  mask = np.zeros((HEIGHT, WIDTH), np.uint8)
  mask[5, 5] = mask[6, 6] = 1
  assert remove_small_components(mask, min_area=2).sum() == 2
  with pytest.raises(ValueError, match='min_area'):
    remove_small_components(mask, min_area=-1)


def test_postprocess_thresholds_fills_and_drops_specks():
  prob = np.full((HEIGHT, WIDTH, 1), 0.2, np.float32)
  prob[..., 0][_square_ring() == 1] = 0.9
  prob[2, 2, 0] = 0.8  # speck
  prob[40, 50, 0] = 0.45  # under the threshold
  result = postprocess_mask(prob, threshold=0.5, min_area=10)
  expected = np.zeros((HEIGHT, WIDTH), np.uint8)
  expected[10:30, 20:40] = 1
  np.testing.assert_array_equal(result, expected)
  assert result.dtype == np.uint8 and result.shape == (HEIGHT, WIDTH)
  unfilled = postprocess_mask(prob, threshold=0.5, fill=False)
  assert unfilled[20, 30] == 0 and unfilled[2, 2] == 1
  assert postprocess_mask(prob, threshold=0.4)[40, 50] == 1


def test_min_area_judges_the_filled_lesion():
  mask = np.zeros((HEIGHT, WIDTH), np.uint8)
  mask[5:12, 5:12] = 1
  mask[6:11, 6:11] = 0  # ring of 24 px around a 25 px hole
  result = postprocess_mask(mask.astype(np.float32), threshold=0.5, min_area=30)
  assert result.sum() == 49


def test_bad_threshold_and_shape_are_clear_errors():
  with pytest.raises(ValueError, match='threshold'):
    postprocess_mask(np.zeros((4, 4)), threshold=1.5)
  with pytest.raises(ValueError, match='shape'):
    postprocess_mask(np.zeros((2, 4, 4)), threshold=0.5)
  with pytest.raises(ValueError, match='shape'):
    fill_holes(np.zeros((4, 4, 3)))
