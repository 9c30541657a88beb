"""Layers rewritten for speed give the reference values and gradients: 1×1 convolutions
as matrix products, depthwise ones as taps, max pooling, ConvBN without its cancelled
bias, up-sampling as a matrix product."""

from flax import nnx
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


@pytest.mark.parametrize('window,stride,pad', [(3, 2, 1), (2, 2, 0), (3, 2, 0), (3, 1, 0)])
def test_max_pool_matches_reduce_window(window, stride, pad):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 11, 9, 3)), jnp.float32)  # no ties: gradients agree
  padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-jnp.inf)

  def reference(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1),
                                 (1, stride, stride, 1), 'VALID')

  ours = layers.max_pool(jax.nn.relu(x), window, stride, pad)
  np.testing.assert_array_equal(ours, reference(jnp.pad(jax.nn.relu(x), (
      (0, 0), (pad, pad), (pad, pad), (0, 0)))))
  weights = jnp.asarray(rng.normal(size=ours.shape), jnp.float32)
  ours_grad = jax.grad(lambda x: jnp.sum(layers.max_pool(x, window, stride) * weights))(padded)
  xla_grad = jax.grad(lambda x: jnp.sum(reference(x) * weights))(padded)
  np.testing.assert_allclose(ours_grad, xla_grad, rtol=1e-6, atol=1e-6)  # summation order
  assert 'reduce_window' not in str(jax.make_jaxpr(layers.max_pool, static_argnums=(1, 2))(
      x, window, stride))


def test_max_pool_too_small_input_names_the_fix():
  with pytest.raises(ValueError, match='larger input images'):
    layers.max_pool(jnp.zeros((1, 2, 2, 1)), 3, 2)


@pytest.mark.parametrize('padding', ['SAME', ((3, 3), (3, 3))])
def test_conv_bn_training_skips_the_bias_that_batchnorm_cancels(padding):
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(3, 10, 10, 4)), jnp.float32)
  unit = layers.ConvBN(4, 6, 7 if padding != 'SAME' else 3, strides=2, padding=padding,
                       use_bias=True, rngs=nnx.Rngs(0))
  unit.conv.bias[...] = jnp.linspace(-3.0, 3.0, 6)
  reference = nnx.BatchNorm(6, momentum=0.9, epsilon=1e-3, rngs=nnx.Rngs(0))
  expected = reference(unit.conv(x), use_running_average=False)

  np.testing.assert_allclose(unit(x, train=True), expected, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(unit.bn.mean[...], reference.mean[...], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(unit.bn.var[...], reference.var[...], rtol=1e-4)
  # Inference adds the bias and subtracts the running mean that holds it.
  np.testing.assert_allclose(unit(x, train=False),
                             reference(unit.conv(x), use_running_average=True),
                             rtol=1e-5, atol=1e-5)
  grads = nnx.grad(lambda unit: jnp.sum(jnp.tanh(unit(x, train=True))))(unit)
  np.testing.assert_array_equal(grads['conv']['bias'][...], 0.0)  # exactly: not rounding noise
  assert np.abs(grads['conv']['kernel'][...]).max() > 0


@pytest.mark.parametrize('strides,padding', [((1, 1), 'SAME'), ((2, 2), ((0, 1), (0, 1))),
                                             ((2, 2), 'SAME'), ((1, 1), 'VALID')])
def test_depthwise_matches_xla_grouped_convolution(strides, padding):
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(2, 9, 8, 6)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 1, 6)), jnp.float32)
  numbers = jax.lax.conv_dimension_numbers(x.shape, w.shape, NHWC)

  def loss(conv):
    return lambda x, w: jnp.sum(jnp.sin(conv(x, w, strides, padding, dimension_numbers=numbers,
                                             feature_group_count=6)))

  ours = jax.value_and_grad(loss(layers.conv_general_dilated), argnums=(0, 1))(x, w)
  xla = jax.value_and_grad(loss(jax.lax.conv_general_dilated), argnums=(0, 1))(x, w)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(xla)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  assert 'conv_general_dilated' not in str(jax.make_jaxpr(loss(layers.conv_general_dilated))(x, w))


@pytest.mark.parametrize('window', [2, 3])
def test_patch_conv_transpose_matches_flax_values_and_gradients(window):
  up = nnx.ConvTranspose(5, 3, (window, window), strides=(window, window), padding='VALID',
                         rngs=nnx.Rngs(0))
  up.bias[...] = jnp.arange(3.0)
  x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 4, 6, 5)), jnp.float32)

  def loss(up, x, conv):
    return jnp.sum(jnp.sin(conv(up, x)))

  ours = nnx.value_and_grad(loss, argnums=(0, 1))(up, x, layers.patch_conv_transpose)
  flax_ = nnx.value_and_grad(loss, argnums=(0, 1))(up, x, lambda up, x: up(x))
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(flax_)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  jaxpr = str(jax.make_jaxpr(lambda x: layers.patch_conv_transpose(up, x))(x))
  assert 'conv_general_dilated' not in jaxpr and 'dot_general' in jaxpr


def test_patch_conv_transpose_leaves_other_layers_to_flax():
  up = nnx.ConvTranspose(2, 2, (3, 3), strides=(2, 2), padding='SAME', rngs=nnx.Rngs(0))
  x = jnp.ones((1, 4, 4, 2))
  np.testing.assert_array_equal(layers.patch_conv_transpose(up, x), up(x))
