"""1×1 convolutions as matrix products give XLA's convolution, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import layers

NHWC = ('NHWC', 'HWIO', 'NHWC')


def both(kernel, strides, padding):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 9, 7, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(*kernel, 5, 4)), jnp.float32)
  numbers = jax.lax.conv_dimension_numbers(x.shape, w.shape, NHWC)

  def loss(conv):
    return lambda x, w: jnp.sum(jnp.sin(conv(x, w, strides, padding,
                                             dimension_numbers=numbers)))

  ours = jax.value_and_grad(loss(layers.conv_general_dilated), argnums=(0, 1))(x, w)
  xla = jax.value_and_grad(loss(jax.lax.conv_general_dilated), argnums=(0, 1))(x, w)
  return ours, xla, jax.make_jaxpr(loss(layers.conv_general_dilated))(x, w)


@pytest.mark.parametrize('strides', [(1, 1), (2, 2)])
@pytest.mark.parametrize('padding', ['SAME', 'VALID'])
def test_pointwise_matches_xla_convolution(strides, padding):
  ours, xla, jaxpr = both((1, 1), strides, padding)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(xla)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  assert 'conv_general_dilated' not in str(jaxpr) and 'dot_general' in str(jaxpr)


def test_other_kernels_use_xla_convolution():
  ours, xla, jaxpr = both((3, 3), (1, 1), 'SAME')
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(xla)):
    np.testing.assert_array_equal(a, b)
  assert 'conv_general_dilated' in str(jaxpr)
