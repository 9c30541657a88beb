import numpy as np
import pytest

from mammojax.data import augment

HEIGHT, WIDTH = 48, 64


def make_example(channels=1, square=(10, 20, 12, 16), shift=0.0):
  """A gradient image in [0, 1] (+ shift) and a mask with one square (top, left, h, w)."""
  rows = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None]
  cols = np.linspace(0.0, 1.0, WIDTH, dtype=np.float32)[None, :]
  gray = (0.6 * rows + 0.4 * cols).astype(np.float32)
  image = np.stack([gray * (c + 1) / channels for c in range(channels)], axis=-1) + shift
  mask = np.zeros((HEIGHT, WIDTH, 1), np.float32)
  top, left, height, width = square
  mask[top:top + height, left:left + width] = 1.0
  return {'image': image.astype(np.float32), 'mask': mask, 'label': 1,
          'weight': np.float32(1.0)}


def box_of(mask):
  rows, cols = np.nonzero(mask[..., 0] > 0.5)
  return rows.min(), rows.max(), cols.min(), cols.max()


def legacy_flip_hv(image, rng):
  """The augmentation before the rewrite; 'flip_hv' must stay bit-identical to it."""
  if rng.random() < 0.5:
    image = image[:, ::-1]
  if rng.random() < 0.5:
    image = image[::-1]
  return np.ascontiguousarray(image)


@pytest.mark.parametrize('seed', range(8))
def test_flip_hv_is_bit_identical_to_the_previous_behaviour(seed):
  example = make_example()
  new = augment.augment_example(example, np.random.default_rng(seed), strategy='flip_hv')
  old = legacy_flip_hv(example['image'], np.random.default_rng(seed))
  assert np.array_equal(new['image'], old)


def test_none_returns_the_same_values_and_draws_nothing():
  example = make_example(channels=3)
  rng = np.random.default_rng(3)
  out = augment.augment_example(example, rng, strategy='none')
  assert np.array_equal(out['image'], example['image'])
  assert np.array_equal(out['mask'], example['mask'])
  assert rng.random() == np.random.default_rng(3).random()


def test_horizontal_flip_mirrors_image_and_mask_together():
  example = make_example(square=(10, 5, 12, 16))
  out = augment.flip_horizontal(example, np.random.default_rng(0), p=1.0)
  assert box_of(out['mask']) == (10, 21, WIDTH - 21, WIDTH - 6)
  assert np.array_equal(out['image'], example['image'][:, ::-1])
  kept = augment.flip_horizontal(example, np.random.default_rng(0), p=0.0)
  assert np.array_equal(kept['mask'], example['mask'])


def test_vertical_flip_mirrors_image_and_mask_together():
  example = make_example(square=(2, 20, 12, 16))
  out = augment.flip_vertical(example, np.random.default_rng(0), p=1.0)
  assert box_of(out['mask']) == (HEIGHT - 14, HEIGHT - 3, 20, 35)
  assert np.array_equal(out['image'], example['image'][::-1])


def square_example(size=48):
  rng = np.random.default_rng(0)
  mask = np.zeros((size, size, 1), np.float32)
  mask[4:14, 30:40] = 1.0
  return {'image': rng.normal(size=(size, size, 3)).astype(np.float32), 'mask': mask}


def test_rotation_by_90_turns_image_and_mask_counter_clockwise():
  example = square_example()
  out = augment.rotate_example(example, 90)
  assert np.array_equal(out['mask'], np.rot90(example['mask']))
  np.testing.assert_allclose(out['image'], np.rot90(example['image']), atol=1e-5)


def test_random_rotation_draws_its_angle_within_the_limit():
  example = square_example()
  angle = np.random.default_rng(5).uniform(-20.0, 20.0)
  out = augment.rotation(example, np.random.default_rng(5))
  expected = augment.rotate_example(example, angle)
  assert -20.0 <= angle <= 20.0
  assert np.array_equal(out['image'], expected['image'])
  assert np.array_equal(out['mask'], expected['mask'])


def test_rotation_reflects_the_image_border_and_zeros_the_mask_border():
  example = make_example(shift=1.0)  # image values in [1, 2]: a black corner would show as 0
  example['mask'][:] = 1.0
  out = augment.rotate_example(example, 45)
  assert out['image'].min() >= 1.0 - 1e-5
  assert out['mask'][0, 0, 0] == 0.0 and out['mask'][HEIGHT // 2, WIDTH // 2, 0] == 1.0
  assert set(np.unique(out['mask'])) == {0.0, 1.0}


def test_zoom_scales_the_mask_about_the_centre():
  example = make_example(square=(18, 26, 12, 12))
  zoomed_in = augment.zoom_example(example, 2.0)
  area_ratio = zoomed_in['mask'].sum() / example['mask'].sum()
  assert area_ratio == pytest.approx(4.0, rel=0.1)
  top, bottom, left, right = box_of(zoomed_in['mask'])
  assert (top + bottom) / 2 == pytest.approx((HEIGHT - 1) / 2, abs=1)
  assert (left + right) / 2 == pytest.approx((WIDTH - 1) / 2, abs=1)
  larger = make_example(square=(12, 20, 24, 24))
  for seed in range(5):  # scale in [0.9, 1.1]: area in [0.81, 1.21], give or take a pixel row
    ratio = augment.zoom(larger, np.random.default_rng(seed))['mask'].sum() / 24**2
    assert 0.75 <= ratio <= 1.3


def test_random_crop_at_full_scale_is_the_identity_and_keeps_shapes_otherwise():
  example = make_example(channels=3)
  same = augment.random_crop(example, np.random.default_rng(0), min_scale=1.0)
  np.testing.assert_allclose(same['image'], example['image'], atol=1e-6)
  assert np.array_equal(same['mask'], example['mask'])
  out = augment.random_crop(example, np.random.default_rng(1))
  assert out['image'].shape == example['image'].shape and out['mask'].shape == (HEIGHT, WIDTH, 1)
  assert out['mask'].sum() > example['mask'].sum()  # the crop enlarges what it keeps


def test_centre_crop_enlarges_a_centred_square_about_the_centre():
  example = make_example(square=(18, 24, 12, 16))
  out = augment.centre_crop(example, None, scale=0.5)
  assert box_of(out['mask']) == (12, 35, 16, 47)


def test_crop_by_mask_keeps_the_square_centred_and_fills_the_frame():
  example = make_example(square=(10, 20, 12, 16))
  tight = augment.crop_by_mask(example, np.random.default_rng(0), border=0)
  assert tight['mask'].min() == 1.0  # the crop is the square itself
  np.testing.assert_allclose(tight['image'][0, 0], example['image'][10, 20], atol=1e-6)
  out = augment.crop_by_mask(example, np.random.default_rng(0), border=(3, 4))
  top, bottom, left, right = box_of(out['mask'])
  assert (top + bottom) / 2 == pytest.approx((HEIGHT - 1) / 2, abs=1)
  assert (left + right) / 2 == pytest.approx((WIDTH - 1) / 2, abs=1)
  assert top == pytest.approx(3 * HEIGHT / 18, abs=1)   # 3-px border of an 18-px window
  assert left == pytest.approx(4 * WIDTH / 24, abs=1)   # 4-px border of a 24-px window


def test_crop_by_mask_clips_the_border_at_the_image_edge():
  assert augment.mask_box(make_example(square=(0, 0, 5, 5))['mask'], 3) == (0, 0, 8, 8)


def test_crop_by_mask_without_or_with_empty_mask_is_unchanged():
  example = make_example()
  no_mask = {k: v for k, v in example.items() if k != 'mask'}
  assert augment.crop_by_mask(no_mask, None) is no_mask
  empty = {**example, 'mask': np.zeros_like(example['mask'])}
  assert augment.crop_by_mask(empty, None) is empty


def test_brightness_scales_towards_the_images_own_minimum():
  example = make_example(channels=3)
  out = augment.brightness(example, np.random.default_rng(0))
  ratio = out['image'][example['image'] > 0] / example['image'][example['image'] > 0]
  assert 0.5 <= ratio.min() and ratio.max() <= 0.7 and np.ptp(ratio) < 1e-5
  assert np.array_equal(out['mask'], example['mask'])
  z_scored = make_example(shift=-0.5)  # values in [-0.5, 0.5]
  out = augment.brightness(z_scored, np.random.default_rng(0))
  assert out['image'].min() == pytest.approx(-0.5)
  assert out['image'].max() == pytest.approx(-0.5 + ratio[0], abs=1e-5)


def test_jitter_is_small_and_tints_rgb_channels_differently():
  example = make_example(channels=3)
  out = augment.jitter(example, np.random.default_rng(1))
  change = np.abs(out['image'] - example['image'])
  assert 0 < change.max() < 0.4
  gains = [np.polyfit(example['image'][..., c].ravel(), out['image'][..., c].ravel(), 1)[0]
           for c in range(3)]
  assert np.ptp(gains) > 1e-3  # per-channel colour jitter
  assert np.array_equal(out['mask'], example['mask'])


def recoloured(example, seeds=range(50)):
  """The first output of background_recolour that changed the image."""
  for seed in seeds:
    out = augment.background_recolour(example, np.random.default_rng(seed))
    if not np.array_equal(out['image'], example['image']):
      return seed, out
  raise AssertionError('background_recolour never changed the image')


def test_background_recolour_paints_only_outside_the_mask():
  example = make_example(channels=3)
  seed, out = recoloured(example)
  tone = augment.SKIN_TONES[np.random.default_rng(seed).integers(len(augment.SKIN_TONES))]
  inside = example['mask'][..., 0] > 0.5
  np.testing.assert_allclose(out['image'][~inside], np.broadcast_to(np.float32(tone) / 255,
                                                                    out['image'][~inside].shape))
  assert np.array_equal(out['image'][inside], example['image'][inside])


def test_background_recolour_uses_luminance_on_gray_and_the_range_of_z_scored_images():
  gray = make_example()
  seed, out = recoloured(gray)
  red, green, blue = augment.SKIN_TONES[
      np.random.default_rng(seed).integers(len(augment.SKIN_TONES))]
  assert out['image'][0, 0, 0] == pytest.approx((0.299 * red + 0.587 * green + 0.114 * blue)
                                                / 255, abs=1e-3)
  z_scored = make_example(channels=3, shift=-0.5)  # values in [-0.5, 0.5]
  seed, out = recoloured(z_scored)
  tone = np.float32(augment.SKIN_TONES[
      np.random.default_rng(seed).integers(len(augment.SKIN_TONES))])
  np.testing.assert_allclose(out['image'][0, 0], -0.5 + tone / 255, atol=1e-5)


def test_background_recolour_without_mask_is_unchanged_and_first_tone_means_keep():
  example = make_example(channels=3)
  no_mask = {k: v for k, v in example.items() if k != 'mask'}
  assert augment.background_recolour(no_mask, np.random.default_rng(0)) is no_mask
  keep = augment.background_recolour(example, np.random.default_rng(0), tones=((0, 0, 0),))
  assert keep is example


@pytest.mark.parametrize('strategy', sorted(augment.STRATEGIES))
def test_every_strategy_keeps_dtype_shape_binary_mask_and_is_deterministic(strategy):
  example = make_example(channels=3)
  original = {k: np.copy(v) for k, v in example.items()}
  for seed in range(4):
    out = augment.augment_example(example, np.random.default_rng(seed), strategy=strategy)
    again = augment.augment_example(example, np.random.default_rng(seed), strategy=strategy)
    assert out['image'].dtype == np.float32 and out['image'].shape == (HEIGHT, WIDTH, 3)
    assert out['mask'].dtype == np.float32 and out['mask'].shape == (HEIGHT, WIDTH, 1)
    assert set(np.unique(out['mask'])) <= {0.0, 1.0}
    assert np.array_equal(out['image'], again['image'])
    assert np.array_equal(out['mask'], again['mask'])
    assert out['label'] == 1 and out['weight'] == 1.0
  for key, value in original.items():  # the input example is never modified
    assert np.array_equal(example[key], value)


@pytest.mark.parametrize('strategy', sorted(augment.STRATEGIES))
@pytest.mark.parametrize('channels', [1, 3])
def test_every_strategy_is_finite_on_a_constant_image(strategy, channels):
  constant = {'image': np.full((HEIGHT, WIDTH, channels), -0.25, np.float32),
              'mask': make_example()['mask']}
  for seed in range(6):
    out = augment.augment_example(constant, np.random.default_rng(seed), strategy=strategy)
    assert np.isfinite(out['image']).all()


def test_strategies_without_mask_work_and_add_no_mask():
  example = {'image': make_example(channels=3)['image'], 'label': 0}
  for strategy in augment.STRATEGIES:
    out = augment.augment_example(example, np.random.default_rng(0), strategy=strategy)
    assert 'mask' not in out and out['image'].shape == (HEIGHT, WIDTH, 3)


def test_unknown_strategy_names_the_config_field_and_choices():
  with pytest.raises(ValueError, match=r'data\.augmentation.*flip_hv'):
    augment.check_strategy('rotate')
  with pytest.raises(ValueError, match='valid choices'):
    augment.augment_example(make_example(), np.random.default_rng(0), strategy='mixup')


def test_mismatched_mask_or_flat_image_is_refused():
  example = make_example()
  with pytest.raises(ValueError, match='does not match'):
    augment.augment_example({**example, 'mask': example['mask'][:10]},
                            np.random.default_rng(0), strategy='flip_hv')
  with pytest.raises(ValueError, match=r'\(H, W, C\)'):
    augment.augment_example({'image': example['image'][..., 0]}, np.random.default_rng(0),
                            strategy='none')


def test_tta_views_are_identity_and_three_flips_for_images_and_batches():
  image = make_example(channels=3)['image']
  views = augment.tta_views(image)
  assert len(views) == 4
  assert np.array_equal(views[0], image)
  assert np.array_equal(views[1], image[:, ::-1])
  assert np.array_equal(views[2], image[::-1])
  assert np.array_equal(views[3], image[::-1, ::-1])
  batch = np.stack([image, image + 1])
  assert np.array_equal(augment.tta_views(batch)[1], batch[:, :, ::-1])
  with pytest.raises(ValueError, match='H, W, C'):
    augment.tta_views(image[..., 0])


def test_tta_average_means_over_views():
  views = [np.array([[0.2, 0.8]]), np.array([[0.4, 0.6]]), np.array([[0.0, 1.0]])]
  np.testing.assert_allclose(augment.tta_average(views), [[0.2, 0.8]])
  with pytest.raises(ValueError, match='one shape'):
    augment.tta_average([np.zeros((1, 2)), np.zeros((2, 2))])
  with pytest.raises(ValueError, match='at least one view'):
    augment.tta_average([])
