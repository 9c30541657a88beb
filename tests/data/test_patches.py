import numpy as np
import pytest

from mammojax.data import patches


def test_mask_bbox_is_exclusive_at_bottom_right():
  mask = np.zeros((10, 10), np.uint8)
  mask[2:5, 3:8] = 1
  assert patches.mask_bbox(mask) == (2, 3, 5, 8)


def test_empty_mask_is_an_error():
  with pytest.raises(ValueError, match='empty'):
    patches.mask_bbox(np.zeros((4, 4)))


def test_square_box_uses_longest_side_times_margin():
  top, left, bottom, right = patches.square_box((10, 10, 20, 30), 1.2)
  assert bottom - top == right - left == 24
  assert (top + bottom) / 2 == pytest.approx(15, abs=0.5)
  assert (left + right) / 2 == pytest.approx(20, abs=0.5)


def test_crop_outside_the_image_is_zero_filled():
  image = np.ones((4, 4), np.float32)
  crop = patches.crop_padded(image, (-2, -2, 2, 2))
  assert crop.shape == (4, 4)
  assert crop[:2].sum() == 0 and crop[2:, 2:].sum() == 4


def test_roi_patch_is_resized_around_the_lesion():
  image = np.zeros((100, 80), np.float32)
  image[40:60, 30:50] = 1.0
  mask = (image > 0).astype(np.uint8)
  patch = patches.roi_patch(image, mask, margin=1.4, size=32)
  assert patch.shape == (32, 32)
  assert patch[16, 16] == pytest.approx(1.0) and patch[0, 0] == 0.0


def test_mask_of_another_size_is_rescaled():
  mask = np.zeros((50, 40), np.uint8)
  mask[20:30, 15:25] = 255
  assert patches.resize_mask(mask, (100, 80)).sum() == 400
