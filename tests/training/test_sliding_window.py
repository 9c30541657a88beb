"""Whole-image inference through windows: an identity model gives the image back exactly."""

import numpy as np
import pytest

from mammojax.models import unet
from mammojax.training import sliding_window


def centre_of(window: int, out_size: int):
  """A stand-in model: each output is the centre of its input window (identity for padded)."""
  def predict(windows):
    return np.asarray(unet.center_crop(windows, out_size))
  return predict


@pytest.mark.parametrize('shape, window, out_size, stride', [
    ((61, 47), 16, 16, 8),     # padded U-Net: output = input
    ((61, 47), 16, 16, 16),    # no overlap
    ((61, 47), 44, 4, 4),      # unpadded: small output, reflect-padded context
    ((10, 9), 32, 32, 16),     # image smaller than a window
    ((100, 130), 108, 20, 20),
])
def test_identity_model_reconstructs_the_image_exactly(shape, window, out_size, stride):
  image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  result = sliding_window.predict_full_image(centre_of(window, out_size), image, window=window,
                                             out_size=out_size, stride=stride)
  np.testing.assert_array_equal(result, image)


def test_odd_margin_is_refused():
  with pytest.raises(ValueError, match='odd number'):
    sliding_window.predict_full_image(centre_of(16, 13), np.zeros((20, 20), np.float32),
                                      window=16, out_size=13, stride=8)
