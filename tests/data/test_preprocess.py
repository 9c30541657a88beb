import cv2
import numpy as np
import pytest

from mammojax.data import image_io, preprocess


def test_zscore_gives_zero_mean_unit_std():
  patch = np.random.default_rng(0).random((16, 16)).astype(np.float32)
  out = preprocess.normalize(patch, preprocess.PreprocessConfig())
  assert abs(out.mean()) < 1e-5 and out.std() == pytest.approx(1.0, abs=1e-4)


def test_constant_patch_normalises_to_zeros_not_nan():
  out = preprocess.normalize(np.full((8, 8), 0.3, np.float32), preprocess.PreprocessConfig())
  assert np.array_equal(out, np.zeros((8, 8), np.float32))


def test_clahe_spreads_a_low_contrast_histogram():
  image = (100 + 10 * np.random.default_rng(0).random((64, 64))).astype(np.uint8)
  out = preprocess.apply_clahe(image, 2.0, 8)
  assert out.dtype == np.uint8 and out.shape == image.shape
  assert np.ptp(out) > np.ptp(image)


def test_full_image_steps_resize_and_scale_16_bit():
  image = np.full((100, 80), 65535, np.uint16)
  config = preprocess.PreprocessConfig(clahe_clip_limit=0, resize_height=50)
  out = preprocess.preprocess_full_image(image, config)
  assert out.shape == (50, 40) and out.dtype == np.float32
  assert out.max() == pytest.approx(1.0)


def test_fingerprint_changes_with_any_step():
  base = preprocess.PreprocessConfig()
  assert base.fingerprint() == preprocess.PreprocessConfig().fingerprint()
  assert base.fingerprint() != preprocess.PreprocessConfig(clahe_tile=4).fingerprint()


def test_unknown_normalisation_lists_choices():
  with pytest.raises(ValueError, match="valid choices: \\('zscore', 'none'\\)"):
    preprocess.PreprocessConfig(normalize='minmax')


def test_unreadable_image_names_the_file(tmp_path):
  bad = tmp_path / 'broken.png'
  bad.write_bytes(b'not a png')
  with pytest.raises(ValueError, match='broken.png'):
    image_io.load_grayscale(bad)


def test_colour_image_becomes_grayscale(tmp_path):
  path = tmp_path / 'rgb.png'
  cv2.imwrite(str(path), np.full((4, 5, 3), 200, np.uint8))
  assert image_io.load_grayscale(path).shape == (4, 5)
