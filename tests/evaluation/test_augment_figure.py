import cv2
import numpy as np
import pytest

from mammojax.evaluation import augment_figure


def make_example(with_mask=True):
  rng = np.random.default_rng(0)
  example = {'image': rng.normal(size=(48, 64, 1)).astype(np.float32), 'label': 0}
  if with_mask:
    mask = np.zeros((48, 64, 1), np.float32)
    mask[12:30, 20:44] = 1.0
    example['mask'] = mask
  return example


def red_pixels(path):
  image = cv2.imread(str(path))  # BGR
  assert image is not None, f'{path} is not a readable image'
  blue, green, red = (image[..., c].astype(int) for c in range(3))
  return int(np.sum((red > 180) & (green < 100) & (blue < 100)))


def test_grid_has_one_row_per_example_and_draws_mask_contours(tmp_path):
  path = tmp_path / 'plots' / 'augment_flip_rotate_zoom.png'
  examples = [make_example(), make_example()]
  panels = augment_figure.save_augment_figure(examples, 'flip_rotate_zoom', path, variants=3)
  assert panels == 2 * (1 + 3)
  image = cv2.imread(str(path))
  assert image.shape[1] > image.shape[0]  # 4 columns of 2 rows
  assert red_pixels(path) > 50  # gray images: red can only be the mask contour


def test_no_contour_without_mask_and_same_seed_gives_same_file(tmp_path):
  examples = [make_example(with_mask=False)]
  first, second = tmp_path / 'a.png', tmp_path / 'b.png'
  assert augment_figure.save_augment_figure(examples, 'rotation', first, seed=3) == 5
  augment_figure.save_augment_figure(examples, 'rotation', second, seed=3)
  assert red_pixels(first) == 0
  assert np.array_equal(cv2.imread(str(first)), cv2.imread(str(second)))


def test_rgb_z_scored_example_renders(tmp_path):
  rng = np.random.default_rng(1)
  example = {'image': rng.normal(size=(48, 64, 3)).astype(np.float32) * 3 - 2}
  path = tmp_path / 'rgb.png'
  assert augment_figure.save_augment_figure([example], 'jitter', path, variants=1) == 2
  assert cv2.imread(str(path)) is not None


def test_bad_arguments_are_refused(tmp_path):
  with pytest.raises(ValueError, match='data.augmentation'):
    augment_figure.save_augment_figure([make_example()], 'rotate', tmp_path / 'x.png')
  with pytest.raises(ValueError, match='at least one example'):
    augment_figure.save_augment_figure([], 'none', tmp_path / 'x.png')
  with pytest.raises(ValueError, match='variants=0'):
    augment_figure.save_augment_figure([make_example()], 'none', tmp_path / 'x.png', variants=0)
  with pytest.raises(ValueError, match=r'examples\[0\]'):
    augment_figure.save_augment_figure([{'image': np.zeros((4, 4))}], 'none', tmp_path / 'x.png')
  assert not (tmp_path / 'x.png').exists()
