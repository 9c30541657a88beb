"""Tests of the preprocessing-steps figure."""

import cv2
import numpy as np
import pytest

from mammojax.data import preprocess
from mammojax.evaluation import preprocess_figure
from tests.data.test_breast_mask import synthetic_mammogram

ALL_ON = preprocess.PreprocessConfig(resize_height=48, breast_mask=True, canonical_side='right',
                                     normalize='gcn')


@pytest.mark.parametrize('config, steps_on', [
    (preprocess.PreprocessConfig(), 4),  # original, clahe, unit range, zscore
    (preprocess.PreprocessConfig(clahe_clip_limit=0, normalize='none'), 2),
    (ALL_ON, 7),  # + resize, breast mask, flip
])
def test_one_row_per_image_one_column_per_step(tmp_path, config, steps_on):
  images = [synthetic_mammogram(), synthetic_mammogram(dtype=np.uint16)[:, ::-1]]
  path = tmp_path / 'plots' / 'preprocess.png'
  panels = preprocess_figure.save_preprocess_figure(images, config, path,
                                                    lateralities=['LEFT', None])
  assert panels == 2 * steps_on == 2 * len(preprocess.steps(images[0], config))
  saved = cv2.imread(str(path))
  assert saved is not None, f'{path} is not a readable PNG'
  height, width = saved.shape[:2]
  assert width / height == pytest.approx(steps_on / 2, rel=0.05)  # the grid's shape


def test_lateralities_must_match_the_images(tmp_path):
  with pytest.raises(ValueError, match='1 lateralities for 2 images'):
    preprocess_figure.save_preprocess_figure([synthetic_mammogram()] * 2, ALL_ON,
                                             tmp_path / 'x.png', lateralities=['LEFT'])
  with pytest.raises(ValueError, match='No sample images'):
    preprocess_figure.save_preprocess_figure([], ALL_ON, tmp_path / 'x.png')
