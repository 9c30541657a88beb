"""BatchNorm with the closed-form gradient against Flax's ``nnx.BatchNorm``."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import batchnorm


def _pair(use_scale=True, dtype=None):
  kwargs = dict(momentum=0.9, epsilon=1e-3, use_scale=use_scale, dtype=dtype)
  ours = batchnorm.BatchNorm(5, rngs=nnx.Rngs(0), **kwargs)
  flax_bn = nnx.BatchNorm(5, rngs=nnx.Rngs(0), **kwargs)
  for module in (ours, flax_bn):  # non-trivial affine parameters
    if module.scale is not None:
      module.scale[...] = jnp.linspace(0.5, 2.0, 5)
    module.bias[...] = jnp.linspace(-1.0, 1.0, 5)
  return ours, flax_bn


def _loss(module, x, weights):
  return jnp.sum(jnp.tanh(module(x, use_running_average=False)) * weights)


@pytest.mark.parametrize('use_scale', [True, False])
def test_training_values_gradients_and_statistics_match_flax(use_scale):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(2.0, 3.0, size=(4, 6, 7, 5)), jnp.float32)
  weights = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
  ours, flax_bn = _pair(use_scale)

  np.testing.assert_allclose(ours(x, use_running_average=False),
                             flax_bn(x, use_running_average=False), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ours.mean[...], flax_bn.mean[...], rtol=1e-6)
  np.testing.assert_allclose(ours.var[...], flax_bn.var[...], rtol=1e-5)
  assert not np.allclose(ours.mean[...], 0.0)  # the running averages moved

  grads = [nnx.grad(_loss, argnums=(0, 1))(module, x, weights) for module in (ours, flax_bn)]
  (ours_params, ours_dx), (flax_params, flax_dx) = grads
  np.testing.assert_allclose(ours_dx, flax_dx, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(ours_params['bias'][...], flax_params['bias'][...], rtol=1e-4,
                             atol=1e-5)
  if use_scale:
    np.testing.assert_allclose(ours_params['scale'][...], flax_params['scale'][...],
                               rtol=1e-4, atol=1e-5)


def test_gradient_flows_through_the_returned_statistics():
  """normalize_batch's mean and variance outputs have their own (correct) gradients."""
  x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4, 2)), jnp.float32)
  scale, bias = jnp.ones(2), jnp.zeros(2)

  def through_stats(x):
    _, mean, var = batchnorm.normalize_batch(x, scale, bias, 1e-3)
    return jnp.sum(mean * 3.0 + var * var)

  def reference(x):
    mean = jnp.mean(x, (0, 1))
    var = jnp.mean(jnp.square(x), (0, 1)) - jnp.square(mean)
    return jnp.sum(mean * 3.0 + var * var)

  np.testing.assert_allclose(jax.grad(through_stats)(x), jax.grad(reference)(x), rtol=1e-5,
                             atol=1e-6)


def test_inference_is_flax_and_bfloat16_computes_in_bfloat16():
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 3, 3, 5)), jnp.float32)
  ours, flax_bn = _pair()
  np.testing.assert_array_equal(ours(x, use_running_average=True),
                                flax_bn(x, use_running_average=True))
  ours_bf16, _ = _pair(dtype=jnp.bfloat16)
  y = ours_bf16(x, use_running_average=False)
  assert y.dtype == jnp.bfloat16
  assert ours_bf16.mean[...].dtype == jnp.float32  # statistics stay float32
  np.testing.assert_allclose(np.asarray(y, np.float32),
                             flax_bn(x, use_running_average=False), rtol=2e-2, atol=2e-2)


def test_state_and_paths_are_flax_batchnorms():
  ours, flax_bn = _pair()
  assert isinstance(ours, nnx.BatchNorm)
  assert (jax.tree.map(jnp.shape, nnx.state(ours))
          == jax.tree.map(jnp.shape, nnx.state(flax_bn)))
