import cv2
import numpy as np
import pytest

from mammojax.data import image_io, preprocess
from tests.data.test_breast_mask import LABEL, synthetic_mammogram

ALL_ON = preprocess.PreprocessConfig(resize_height=48, breast_mask=True, canonical_side='right',
                                     normalize='gcn')


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
  with pytest.raises(ValueError, match="valid choices: \\('zscore', 'none', 'gcn'\\)"):
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


def _old_full_image(image, config):
  """The pipeline before breast masking and flips existed: defaults must match it."""
  image = preprocess.resize_to_height(image, config.resize_height)
  if config.clahe_clip_limit > 0:
    image = preprocess.apply_clahe(image, config.clahe_clip_limit, config.clahe_tile)
  return preprocess.to_unit_range(image)


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
@pytest.mark.parametrize('resize_height', [0, 48])
def test_defaults_give_exactly_the_old_output(dtype, resize_height):
  image = synthetic_mammogram(dtype=dtype)
  config = preprocess.PreprocessConfig(resize_height=resize_height)
  assert np.array_equal(preprocess.preprocess_full_image(image, config),
                        _old_full_image(image, config))
  prepared = preprocess.prepare_full_image(image, config)
  assert not prepared.flipped and prepared.breast_mask is None


def test_old_stored_configs_still_load():
  old = {'clahe_clip_limit': 2.0, 'clahe_tile': 8, 'resize_height': 0, 'normalize': 'zscore'}
  config = preprocess.PreprocessConfig(**old)
  assert config == preprocess.PreprocessConfig()
  assert not config.breast_mask and config.canonical_side == '' and config.gcn_scale == 1.0


@pytest.mark.parametrize('field, value, message', [
    ('canonical_side', 'up', "Unknown canonical_side 'up'; valid choices: \\('', 'left'"),
    ('mask_threshold', 1.5, 'mask_threshold 1.5 must be in'),
    ('gcn_scale', 0.0, 'gcn_scale must be > 0'),
    ('gcn_lambda', -1.0, 'gcn_lambda >= 0'),
])
def test_bad_new_fields_are_explained(field, value, message):
  with pytest.raises(ValueError, match=message):
    preprocess.PreprocessConfig(**{field: value})


def test_gcn_matches_the_textbook_formula():
  patch = np.random.default_rng(1).random((16, 12)).astype(np.float32)
  config = preprocess.PreprocessConfig(normalize='gcn', gcn_scale=2.0, gcn_lambda=0.01)
  out = preprocess.normalize(patch, config)
  x = patch.astype(np.float64)
  expected = 2.0 * (x - x.mean()) / np.sqrt(0.01 + np.mean((x - x.mean()) ** 2))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_gcn_without_lambda_gives_zero_mean_and_rms_scale():
  patch = np.random.default_rng(2).integers(0, 65535, (16, 16)).astype(np.uint16)
  out = preprocess.global_contrast_normalize(patch, scale=3.0)
  assert abs(out.mean()) < 1e-4
  assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(3.0, rel=1e-5)


def test_gcn_lambda_damps_low_contrast():
  patch = 0.5 + 0.01 * np.random.default_rng(3).random((8, 8)).astype(np.float32)
  plain = preprocess.global_contrast_normalize(patch)
  damped = preprocess.global_contrast_normalize(patch, lambda_=1.0)
  assert np.abs(damped).max() < 0.01 < np.abs(plain).max()


def test_gcn_of_a_constant_patch_is_zeros_not_nan():
  config = preprocess.PreprocessConfig(normalize='gcn')
  out = preprocess.normalize(np.full((8, 8), 0.3, np.float32), config)
  assert np.array_equal(out, np.zeros((8, 8), np.float32))


def test_breast_masking_removes_the_label_and_reports_the_mask():
  config = preprocess.PreprocessConfig(clahe_clip_limit=0, breast_mask=True)
  prepared = preprocess.prepare_full_image(synthetic_mammogram(), config)
  assert prepared.image[LABEL].max() == 0.0 and prepared.image[30, 10] > 0.4
  assert prepared.breast_mask.shape == prepared.image.shape
  assert prepared.breast_mask[LABEL].sum() == 0 and prepared.breast_mask[30, 10] == 1


def test_canonical_side_flips_from_the_image_or_the_laterality():
  image = synthetic_mammogram()  # breast on the left
  config = preprocess.PreprocessConfig(clahe_clip_limit=0, canonical_side='right')
  prepared = preprocess.prepare_full_image(image, config)
  assert prepared.flipped
  assert np.array_equal(prepared.image, preprocess.to_unit_range(image)[:, ::-1])
  # A record that says RIGHT is already on the right side: the laterality wins.
  assert not preprocess.prepare_full_image(image, config, laterality='RIGHT').flipped
  kept = preprocess.preprocess_full_image(image, config, laterality='RIGHT')
  assert np.array_equal(kept, preprocess.to_unit_range(image))


def test_masks_follow_the_image_geometry():
  image = synthetic_mammogram()
  lesion = np.zeros(image.shape, np.uint8)
  lesion[40:56, 6:18] = 255
  image[lesion > 0] = 250  # a bright lesion to find again
  prepared = preprocess.prepare_full_image(image, ALL_ON)
  moved = prepared.transform_mask(lesion)
  assert prepared.flipped and moved.shape == prepared.image.shape == (48, 36)
  assert set(np.unique(moved)) == {0, 1}
  _, cols = np.nonzero(moved)
  assert cols.min() > 36 // 2  # the lesion was on the left: it moved right
  assert prepared.image[moved > 0].mean() > prepared.image[prepared.breast_mask > 0].mean()
  assert prepared.breast_mask[:, 18:].sum() > prepared.breast_mask[:, :18].sum()


def test_steps_name_every_step_that_is_on():
  names = [name for name, _ in preprocess.steps(synthetic_mammogram(), ALL_ON)]
  assert names == ['original', 'resize', 'breast mask', 'flip', 'clahe', 'unit range', 'gcn']
  default = preprocess.steps(synthetic_mammogram(), preprocess.PreprocessConfig())
  assert [name for name, _ in default] == ['original', 'clahe', 'unit range', 'zscore']
  none = preprocess.PreprocessConfig(clahe_clip_limit=0, normalize='none')
  assert [name for name, _ in preprocess.steps(synthetic_mammogram(), none)] == [
      'original', 'unit range']


def test_steps_end_with_the_full_image_output():
  image = synthetic_mammogram(dtype=np.uint16)
  named = dict(preprocess.steps(image, ALL_ON, laterality='LEFT'))
  assert named['original'] is image
  assert np.array_equal(named['unit range'],
                        preprocess.preprocess_full_image(image, ALL_ON, laterality='LEFT'))
  assert np.array_equal(named['gcn'], preprocess.normalize(named['unit range'], ALL_ON))


@pytest.mark.parametrize('image', [
    synthetic_mammogram(dtype=np.uint16),
    np.full((96, 72), 4095, np.uint16),  # constant 12-bit image
    np.zeros((96, 72), np.uint8),
], ids=['mammogram', 'constant', 'black'])
def test_every_step_works_on_16_bit_and_constant_images(image):
  for name, array in preprocess.steps(image, ALL_ON):
    assert np.isfinite(array).all(), name
  out = preprocess.preprocess_full_image(image, ALL_ON)
  assert out.dtype == np.float32 and out.shape == (48, 36)
  assert 0.0 <= out.min() and out.max() <= 1.0
