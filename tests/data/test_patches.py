import numpy as np
import pytest

from mammojax.data import patches
from tests.data.test_breast_mask import LABEL, synthetic_mammogram


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


def _coordinates_image(height=100, width=80):
  """Each pixel holds row * 1000 + col, so a crop tells where it came from."""
  rows, cols = np.mgrid[:height, :width]
  return (rows * 1000 + cols).astype(np.float32)


def _lesion(shape=(100, 80), box=(40, 30, 60, 50)):
  mask = np.zeros(shape, np.uint8)
  mask[box[0]:box[2], box[1]:box[3]] = 1
  return mask


def test_roi_patch_can_return_the_matching_mask_patch():
  image = np.zeros((100, 80), np.float32)
  image[40:60, 30:50] = 1.0
  mask = _lesion()
  patch, mask_patch = patches.roi_patch(image, mask * 255, margin=1.4, size=28,
                                        return_mask=True)
  assert np.array_equal(patch, patches.roi_patch(image, mask, margin=1.4, size=28))
  assert mask_patch.shape == (28, 28) and mask_patch.dtype == np.uint8
  assert set(np.unique(mask_patch)) == {0, 1}
  assert np.array_equal(mask_patch, (patch > 0.5).astype(np.uint8))


def test_roi_patch_keeps_colour_channels():
  image = np.zeros((100, 80, 3), np.uint8)
  image[40:60, 30:50] = (10, 20, 30)
  patch = patches.roi_patch(image, _lesion(), margin=1.2, size=32)
  assert patch.shape == (32, 32, 3) and tuple(patch[16, 16]) == (10, 20, 30)


def test_roi_crops_overlap_the_centred_crop_by_at_least_90_percent():
  image, mask = _coordinates_image(), _lesion()
  centred = patches.square_box(patches.mask_bbox(mask), 1.5)  # side 30 = size: no resize
  crops, mask_crops = patches.roi_crops(image, mask, size=30, margin=1.5, count=40,
                                        rng=np.random.default_rng(0), return_mask=True)
  assert crops.shape == mask_crops.shape == (40, 30, 30)
  boxes = set()
  for crop, mask_crop in zip(crops, mask_crops):
    top, left = divmod(int(crop[0, 0]), 1000)
    box = (top, left, top + 30, left + 30)
    assert patches.iou(box, centred) >= 0.9
    assert np.array_equal(mask_crop, patches.crop_padded(mask, box))
    boxes.add(box)
  assert len(boxes) > 3  # really shifted, not 40 copies of one crop


def test_roi_crops_are_reproducible_and_exact_at_full_overlap():
  image, mask = _coordinates_image(), _lesion()
  first = patches.roi_crops(image, mask, size=16, margin=1.2, count=5,
                            rng=np.random.default_rng(7))
  again = patches.roi_crops(image, mask, size=16, margin=1.2, count=5,
                            rng=np.random.default_rng(7))
  assert np.array_equal(first, again)
  still = patches.roi_crops(image, mask, size=16, margin=1.2, count=3, min_overlap=1.0,
                            rng=np.random.default_rng(7))
  centred = patches.roi_patch(image, mask, margin=1.2, size=16)
  assert all(np.array_equal(crop, centred) for crop in still)


@pytest.mark.parametrize('min_overlap', [0.5, 0.9, 0.95])
def test_random_shifts_keep_the_overlap_for_every_side(min_overlap):
  rng = np.random.default_rng(0)
  for side in range(1, 120):
    for _ in range(5):
      dy, dx = patches._random_shift(side, min_overlap, rng)  # pylint: disable=protected-access
      box = (0, 0, side, side)
      assert patches.iou(box, (dy, dx, side + dy, side + dx)) >= min_overlap - 1e-9


def test_mask_crop_keeps_a_border_clipped_to_the_image():
  image, mask = _coordinates_image(), _lesion(box=(5, 30, 60, 50))
  crop, mask_crop = patches.mask_crop(image, mask, size=None, border=(3, 10),
                                      return_mask=True)
  # rows 5-3=2 .. 60+3=63, cols 30-10=20 .. 50+10=60
  assert crop.shape == (61, 40) and crop[0, 0] == 2 * 1000 + 20
  assert crop[-1, -1] == 62 * 1000 + 59
  assert mask_crop.sum() == mask.sum()
  clipped = patches.mask_crop(image, mask, size=None, border=8)
  assert clipped[0, 0] == 0 * 1000 + 22  # the top border stops at row 0


def test_mask_crop_resizes_and_rejects_an_empty_mask():
  image, mask = _coordinates_image(), _lesion()
  crop, mask_crop = patches.mask_crop(image, mask, size=24, border=0, return_mask=True)
  assert crop.shape == mask_crop.shape == (24, 24) and mask_crop.min() == 1
  with pytest.raises(ValueError, match='mask is empty'):
    patches.mask_crop(image, np.zeros((100, 80), np.uint8), size=24, border=4)
  with pytest.raises(ValueError, match='border'):
    patches.mask_crop(image, mask, size=24, border=-1)


def test_lesion_patch_ok_follows_the_tfds_rule():
  small = _lesion(box=(40, 30, 50, 40))  # 10×10 lesion
  assert patches.lesion_patch_ok(small, (35, 25, 67, 57))  # all of the lesion inside
  assert not patches.lesion_patch_ok(small, (45, 25, 77, 57))  # only half of it
  big = _lesion(box=(0, 0, 100, 80))
  assert patches.lesion_patch_ok(big, (10, 10, 42, 42))  # the patch is all lesion
  half = _lesion(box=(0, 0, 100, 26))
  assert not patches.lesion_patch_ok(half, (10, 10, 42, 42))  # half of patch, 1/6 of lesion
  assert patches.lesion_patch_ok(half, (10, 10, 42, 42), min_overlap=0.4)


def test_lesion_patches_satisfy_the_rule_and_match_their_masks():
  image, mask = _coordinates_image(), _lesion(box=(40, 30, 50, 40))
  sample = patches.lesion_patches(image, mask, size=24, count=6, rng=np.random.default_rng(1))
  assert sample.reason == '' and sample.images.shape == (6, 24, 24)
  assert len({tuple(box) for box in sample.boxes}) == 6
  for crop, mask_crop, box in zip(sample.images, sample.masks, sample.boxes):
    assert patches.lesion_patch_ok(mask, tuple(box))
    top, left, bottom, right = box
    assert crop[0, 0] == top * 1000 + left and (bottom - top, right - left) == (24, 24)
    assert np.array_equal(mask_crop, mask[top:bottom, left:right])


def test_lesion_patches_relax_the_threshold_when_none_can_reach_it():
  mask = np.eye(64, dtype=np.uint8)  # a long thin lesion: a 24 px patch holds ≤ 24/64 of it
  sample = patches.lesion_patches(np.ones((64, 64), np.float32), mask, size=24, count=4,
                                  rng=np.random.default_rng(0))
  assert sample.reason == '' and len(sample.boxes) == 4
  assert not any(patches.lesion_patch_ok(mask, tuple(box)) for box in sample.boxes)
  assert all(patches.lesion_patch_ok(mask, tuple(box), min_overlap=0.1)
             for box in sample.boxes)


def test_lesion_patches_give_up_with_a_reason():
  mask = np.zeros((64, 64), np.uint8)
  mask[::8, ::8] = 1  # 64 scattered dots: a patch never holds 10% of them
  sample = patches.lesion_patches(np.ones((64, 64), np.float32), mask, size=16, count=3,
                                  rng=np.random.default_rng(0))
  assert len(sample.boxes) == 0 and sample.images.shape == (0, 16, 16)
  assert 'found 0 of 3 lesion patches' in sample.reason


def _breast_and_lesion():
  breast = np.zeros((100, 80), np.uint8)
  breast[:, :50] = 1
  lesion = _lesion(box=(40, 10, 60, 30))
  return breast, lesion


def test_background_patches_stay_in_the_breast_and_off_the_lesion():
  image = _coordinates_image()
  breast, lesion = _breast_and_lesion()
  sample = patches.background_patches(image, lesion, breast, size=20, count=8,
                                      rng=np.random.default_rng(0))
  assert sample.reason == '' and sample.images.shape == (8, 20, 20)
  for crop, mask_crop, (top, left, bottom, right) in zip(sample.images, sample.masks,
                                                         sample.boxes):
    assert breast[top:bottom, left:right].mean() >= 0.75
    inside = lesion[top:bottom, left:right].sum()
    assert inside / 400 <= 0.35 and inside / lesion.sum() <= 0.35
    assert crop[0, 0] == top * 1000 + left
    assert np.array_equal(mask_crop, lesion[top:bottom, left:right])


def test_background_patches_check_every_lesion_of_a_stack():
  breast, lesion = _breast_and_lesion()
  tiny = _lesion(box=(10, 10, 12, 12))  # 4 px: any patch holding it has 100% of it
  sample = patches.background_patches(_coordinates_image(), np.stack([lesion, tiny]), breast,
                                      size=20, count=10, rng=np.random.default_rng(3))
  for top, left, bottom, right in sample.boxes:
    assert tiny[top:bottom, left:right].sum() <= 1  # ≤ 35% of the 4 px lesion


def test_background_patches_relax_then_give_up():
  image = np.ones((64, 64), np.float32)
  breast = np.zeros((64, 64), np.uint8)
  breast[:, :19] = 1  # a 32 px patch is at most 19/32 ≈ 0.59 breast: needs relaxing
  relaxed = patches.background_patches(image, None, breast, size=32, count=3,
                                       rng=np.random.default_rng(0))
  assert relaxed.reason == '' and len(relaxed.boxes) == 3
  breast[:, 2:] = 0  # at most 2/32 breast: below the 0.1 floor
  hopeless = patches.background_patches(image, None, breast, size=32, count=3,
                                        rng=np.random.default_rng(0))
  assert len(hopeless.boxes) == 0 and 'found 0 of 3 background patches' in hopeless.reason


def test_background_patches_find_the_breast_themselves():
  image = synthetic_mammogram()
  sample = patches.background_patches(image, None, None, size=16, count=5,
                                      rng=np.random.default_rng(0))
  assert len(sample.boxes) == 5
  label_box = (LABEL[0].start, LABEL[1].start, LABEL[0].stop, LABEL[1].stop)
  assert all(patches.iou(tuple(box), label_box) == 0 for box in sample.boxes)


def test_image_smaller_than_the_patch_gives_a_reason():
  sample = patches.background_patches(np.ones((10, 10), np.float32), None,
                                      np.ones((10, 10), np.uint8), size=16, count=2,
                                      rng=np.random.default_rng(0))
  assert len(sample.boxes) == 0 and 'smaller than the 16x16 patch' in sample.reason
