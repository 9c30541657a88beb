"""Tests of the breast region (threshold, largest component, holes, labels) and side flips."""

import cv2
import numpy as np
import pytest

from mammojax.data import breast_mask

LABEL = (slice(4, 14), slice(52, 68))  # a bright scanner label, top-right corner
BREAST_CENTRE = (48, 0)  # (y, x): the breast hangs from the left edge
HOLE = (48, 14)  # a dark fatty spot inside the breast


def synthetic_mammogram(*, bridge: bool = False, dtype=np.uint8) -> np.ndarray:
  """A 96×72 mammogram: breast on the left, a dark hole, a label and a letter, noise.

  ``bridge`` joins the label to the breast with a 1-pixel line, as scanners do.
  """
  rng = np.random.default_rng(0)
  image = rng.integers(0, 12, (96, 72)).astype(np.float64)
  breast = np.zeros((96, 72), np.uint8)
  cv2.ellipse(breast, BREAST_CENTRE[::-1], (34, 40), 0, -90, 90, 1, thickness=-1)
  gradient = np.linspace(200, 130, 72)[None, :].repeat(96, axis=0)  # thinner at the nipple
  image[breast > 0] = gradient[breast > 0] + rng.normal(0, 5, int(breast.sum()))
  image = np.clip(image, 0, 255).astype(np.uint8)  # cv2 draws text on 8 bits only
  cv2.circle(image, HOLE[::-1], 4, 8, thickness=-1)
  image[LABEL] = 255
  cv2.putText(image, 'R', (56, 90), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 250, 2)
  if bridge:
    cv2.line(image, (18, 22), (53, 9), 240, 1)
  return image.astype(np.uint16) * 257 if dtype == np.uint16 else image


def breast_truth() -> np.ndarray:
  truth = np.zeros((96, 72), np.uint8)
  cv2.ellipse(truth, BREAST_CENTRE[::-1], (34, 40), 0, -90, 90, 1, thickness=-1)
  return truth


def test_mask_keeps_the_breast_fills_its_hole_and_drops_labels():
  mask = breast_mask.breast_region(synthetic_mammogram())
  assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
  assert mask[LABEL].sum() == 0  # the label is gone
  assert mask[80:92, 54:70].sum() == 0  # and so is the letter
  assert mask[HOLE] == 1  # the dark spot inside is filled
  agreement = (mask == breast_truth()).mean()
  assert agreement > 0.97


def test_opening_cuts_a_thin_bridge_to_the_label():
  mask = breast_mask.breast_region(synthetic_mammogram(bridge=True))
  assert mask[LABEL].sum() == 0
  assert mask[BREAST_CENTRE[0], 10] == 1


def test_without_opening_the_bridge_keeps_the_label():
  # Proves the opening above does the work: with it off the label stays attached.
  mask = breast_mask.breast_region(synthetic_mammogram(bridge=True), opening=0)
  assert mask[LABEL].sum() > 0


@pytest.mark.parametrize('scale', [257, 16])  # full 16-bit and 12-bit data in uint16
def test_16_bit_images_give_the_8_bit_mask(scale):
  image8 = synthetic_mammogram()
  image16 = image8.astype(np.uint16) * scale
  assert np.array_equal(breast_mask.breast_region(image16), breast_mask.breast_region(image8))


def test_fixed_threshold_is_a_fraction_of_the_intensity_range():
  image = np.zeros((64, 48), np.uint8)
  image[10:50, 0:20] = 60  # faint tissue, the bigger part
  image[20:40, 20:30] = 200  # dense tissue, joined to it
  high = breast_mask.breast_region(image, threshold=0.5, opening=0)
  low = breast_mask.breast_region(image, threshold=0.1, opening=0)
  assert high.sum() == 20 * 10 and high[30, 25] == 1 and high[30, 5] == 0
  assert low.sum() == 40 * 20 + 20 * 10


@pytest.mark.parametrize('value', [0, 77])
def test_constant_image_keeps_everything(value):
  mask = breast_mask.breast_region(np.full((32, 24), value, np.uint16))
  assert np.array_equal(mask, np.ones((32, 24), np.uint8))


def test_bad_threshold_and_colour_images_are_errors():
  with pytest.raises(ValueError, match='threshold 1.5 must be in'):
    breast_mask.breast_region(np.zeros((8, 8), np.uint8), threshold=1.5)
  with pytest.raises(ValueError, match='2-D grayscale'):
    breast_mask.breast_region(np.zeros((8, 8, 3), np.uint8))


def test_apply_mask_zeroes_outside_and_keeps_dtype():
  image = np.arange(12, dtype=np.uint16).reshape(3, 4) + 1000
  mask = np.zeros((3, 4), np.uint8)
  mask[1:, :2] = 1
  out = breast_mask.apply_breast_mask(image, mask)
  assert out.dtype == np.uint16
  assert np.array_equal(out[1:, :2], image[1:, :2]) and out.sum() == image[1:, :2].sum()
  with pytest.raises(ValueError, match=r'\(2, 2\) does not match the image'):
    breast_mask.apply_breast_mask(image, np.ones((2, 2), np.uint8))


def test_breast_side_follows_the_mass():
  image = synthetic_mammogram()
  image[LABEL] = 0
  assert breast_mask.breast_side(image) == 'left'
  assert breast_mask.breast_side(image[:, ::-1]) == 'right'


def test_flip_to_side_mirrors_only_when_needed():
  image = synthetic_mammogram()
  same, flipped = breast_mask.flip_to_side(image, 'left')
  assert not flipped and same is image
  mirrored, flipped = breast_mask.flip_to_side(image, 'right')
  assert flipped and np.array_equal(mirrored, image[:, ::-1])


def test_laterality_decides_over_the_image():
  image = synthetic_mammogram()  # looks left
  out, flipped = breast_mask.flip_to_side(image, 'left', laterality='RIGHT')
  assert flipped and np.array_equal(out, image[:, ::-1])
  _, flipped = breast_mask.flip_to_side(image, 'right', laterality=' r ')
  assert not flipped


def test_bad_side_or_laterality_lists_the_choices():
  with pytest.raises(ValueError, match="Unknown side 'up'"):
    breast_mask.flip_to_side(np.zeros((4, 4)), 'up')
  with pytest.raises(ValueError, match="Unknown laterality 'BOTH'; valid: LEFT, RIGHT"):
    breast_mask.flip_to_side(np.zeros((4, 4)), 'left', laterality='BOTH')
