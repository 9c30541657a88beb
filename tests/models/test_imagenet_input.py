import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import imagenet_input


def test_caffe_repeats_gray_and_subtracts_bgr_means():
  out = imagenet_input.scale_input(jnp.full((1, 2, 2, 1), 0.5), 'caffe', 3)
  np.testing.assert_allclose(out[0, 0, 0], [127.5 - 103.939, 127.5 - 116.779, 127.5 - 123.68],
                             rtol=1e-6)


def test_tf_maps_unit_range_to_plus_minus_one():
  out = imagenet_input.scale_input(jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1), 'tf', 1)
  np.testing.assert_allclose(np.ravel(out), [-1.0, 1.0])


def test_torch_uses_imagenet_mean_and_std():
  out = imagenet_input.scale_input(jnp.full((1, 1, 1, 1), 0.485), 'torch', 3)
  assert float(out[0, 0, 0, 0]) == pytest.approx(0.0, abs=1e-6)
  assert float(out[0, 0, 0, 2]) == pytest.approx((0.485 - 0.406) / 0.225, rel=1e-5)


def test_unknown_mode_lists_choices():
  with pytest.raises(ValueError, match='valid choices'):
    imagenet_input.scale_input(jnp.zeros((1, 1, 1, 1)), 'inception', 1)
