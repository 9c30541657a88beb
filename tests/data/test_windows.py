"""Tests of the sliding windows for segmentation: cover, cut, blend back exactly."""

import numpy as np
import pytest

from mammojax.data import windows

NOTES_SIZES = [(1024, 512), (512, 256), (448, 224), (384, 192)]  # (size, stride)
HEIGHT, WIDTH = 1100, 700  # a multiple of none of them


@pytest.mark.parametrize('size, stride', NOTES_SIZES)
def test_windows_cover_the_image_with_the_last_one_flush(size, stride):
  boxes = windows.window_boxes(HEIGHT, WIDTH, size=size, stride=stride)
  covered = np.zeros((HEIGHT, WIDTH), bool)
  for top, left, bottom, right in boxes:
    assert (bottom - top, right - left) == (size, size) and top >= 0 and left >= 0
    covered[top:bottom, left:right] = True
  assert covered.all()
  assert max(box[2] for box in boxes) == max(HEIGHT, size)
  assert max(box[3] for box in boxes) == max(WIDTH, size)
  tops = sorted({box[0] for box in boxes})
  assert all(b - a <= stride for a, b in zip(tops, tops[1:]))


@pytest.mark.parametrize('size, stride', NOTES_SIZES)
def test_extract_then_blend_returns_the_image_exactly(size, stride):
  image = np.random.default_rng(0).random((HEIGHT, WIDTH), dtype=np.float32)
  boxes = windows.window_boxes(HEIGHT, WIDTH, size=size, stride=stride)
  cut = windows.extract_windows(image, boxes)
  assert cut.shape == (len(boxes), size, size)
  assert np.array_equal(windows.blend_windows(cut, boxes, image.shape), image)


def test_small_images_are_padded_with_zeros():
  image = np.full((300, 200), 7, np.uint8)
  boxes = windows.window_boxes(300, 200, size=384, stride=192)
  assert boxes == [(0, 0, 384, 384)]
  cut = windows.extract_windows(image, boxes)
  assert cut[0, :300, :200].min() == 7
  assert cut[0, 300:].max() == 0 and cut[0, :, 200:].max() == 0
  assert np.array_equal(windows.blend_windows(cut, boxes, image.shape), image)


def test_known_positions_for_one_axis():
  boxes = windows.window_boxes(1100, 512, size=512, stride=256)
  assert sorted({box[0] for box in boxes}) == [0, 256, 512, 588]
  assert {box[1] for box in boxes} == {0}


def test_overlaps_are_averaged():
  boxes = [(0, 0, 4, 4), (0, 2, 4, 6)]
  preds = np.stack([np.full((4, 4), 1.0, np.float32), np.full((4, 4), 0.0, np.float32)])
  out = windows.blend_windows(preds, boxes, (4, 6))
  assert out.dtype == np.float32
  assert np.array_equal(out[:, :2], np.ones((4, 2)))
  assert np.array_equal(out[:, 4:], np.zeros((4, 2)))
  assert np.array_equal(out[:, 2:4], np.full((4, 2), 0.5))


def test_channels_round_trip():
  image = np.random.default_rng(1).random((70, 90, 3)).astype(np.float32)
  boxes = windows.window_boxes(70, 90, size=32, stride=16)
  cut = windows.extract_windows(image, boxes)
  assert cut.shape == (len(boxes), 32, 32, 3)
  assert np.array_equal(windows.blend_windows(cut, boxes, (70, 90)), image)


def test_bad_arguments_say_what_to_do():
  with pytest.raises(ValueError, match='stride <= size'):
    windows.window_boxes(100, 100, size=32, stride=64)
  with pytest.raises(ValueError, match='empty 0x100 image'):
    windows.window_boxes(0, 100, size=32, stride=16)
  boxes = windows.window_boxes(64, 64, size=32, stride=32)
  cut = windows.extract_windows(np.ones((64, 64), np.float32), boxes)
  with pytest.raises(ValueError, match='3 windows but 4 boxes'):
    windows.blend_windows(cut[:3], boxes, (64, 64))
  with pytest.raises(ValueError, match='do not cover the whole image'):
    windows.blend_windows(cut[:3], boxes[:3], (64, 64))
