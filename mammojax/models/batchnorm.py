"""BatchNorm with a hand-written backward pass (same parameters as ``nnx.BatchNorm``).

``nnx.BatchNorm`` in training mode is differentiated by JAX through its mean,
mean of squares and normalisation: the gradient takes several passes over the
activations, and XLA's CPU backend runs them as separate loops. The closed
form of the BatchNorm gradient needs one pass for its two sums and one for the
input gradient:

    x̂ = (x - μ) / σ,   dβ = Σ dy,   dγ = Σ dy·x̂,
    dx = γ / (σ n) · (n dy - dβ - x̂ dγ)

Written as a ``jax.custom_vjp`` it halves BatchNorm's share of a training step
on CPU (benchmarks/README.md) and changes no value beyond float rounding.
``BatchNorm`` subclasses ``nnx.BatchNorm``, so parameters, statistics, their
paths, checkpoints, Keras weight loading and inference are exactly Flax's.
"""

import functools

from flax import nnx
import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def normalize_batch(x: jax.Array, scale: jax.Array, bias: jax.Array,
                    epsilon: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(normalised ``x``, batch mean, batch variance) over every axis but the last.

  Statistics are float32 whatever ``x``'s dtype (as Flax computes them); the
  output has ``x``'s dtype. The variance is E[x²] - E[x]², clipped at 0, as
  Flax's ``use_fast_variance``: both sums come from one pass over ``x``.
  """
  return _normalize_forward(x, scale, bias, epsilon)[0]


def _normalize_forward(x, scale, bias, epsilon):
  axes = tuple(range(x.ndim - 1))
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axes)
  var = jnp.maximum(0.0, jnp.mean(jnp.square(x32), axes) - jnp.square(mean))
  inverse_std = jax.lax.rsqrt(var + epsilon)
  y = (x32 - mean) * (scale * inverse_std) + bias
  return (y.astype(x.dtype), mean, var), (x, mean, inverse_std, scale)


def _normalize_backward(epsilon, residuals, cotangents):
  del epsilon
  x, mean, inverse_std, scale = residuals
  dy, dmean, dvar = cotangents
  axes = tuple(range(x.ndim - 1))
  count = x.size // x.shape[-1]
  x32 = x.astype(jnp.float32)
  dy = dy.astype(jnp.float32)
  centred = x32 - mean
  dbias = jnp.sum(dy, axes)
  dscale = jnp.sum(dy * centred, axes) * inverse_std
  dx = (scale * inverse_std) * (dy - (dbias + centred * inverse_std * dscale) / count)
  # The statistics' own cotangents (zero when they only feed the running averages).
  dx = dx + (dmean + 2.0 * centred * dvar) / count
  return dx.astype(x.dtype), dscale, dbias


normalize_batch.defvjp(_normalize_forward, _normalize_backward)


class BatchNorm(nnx.BatchNorm):
  """``nnx.BatchNorm`` whose training-mode gradient is ``normalize_batch``'s closed form.

  Inference (running averages), masked statistics and non-channels-last axes
  are Flax's own code path. The running averages update as in Flax:
  ``momentum · running + (1 - momentum) · batch``.
  """

  def __call__(self, x, use_running_average=None, *, mask=None, shift=None):
    """Normalises ``x + shift`` (``shift``: a per-channel offset the caller left out).

    In training the batch mean cancels ``shift`` exactly, so it only moves the
    running mean; ``ConvBN`` uses this to skip adding a convolution's bias.
    """
    use_running_average = (self.use_running_average if use_running_average is None
                           else use_running_average)
    if (use_running_average is not False or mask is not None
        or self.axis not in (-1, x.ndim - 1) or self.axis_name is not None
        or not self.use_fast_variance):
      return super().__call__(x if shift is None else x + shift, use_running_average,
                              mask=mask)
    dtype = self.dtype or jnp.result_type(x, jnp.float32)
    scale = (self.scale[...] if self.scale is not None
             else jnp.ones(x.shape[-1], jnp.float32)).astype(jnp.float32)
    bias = (self.bias[...] if self.bias is not None
            else jnp.zeros(x.shape[-1], jnp.float32)).astype(jnp.float32)
    y, mean, var = normalize_batch(x.astype(dtype), scale, bias, self.epsilon)
    if shift is not None:
      mean = mean + shift.astype(jnp.float32)
    self.mean[...] = jax.lax.stop_gradient(
        self.momentum * self.mean[...] + (1 - self.momentum) * mean)
    self.var[...] = jax.lax.stop_gradient(
        self.momentum * self.var[...] + (1 - self.momentum) * var)
    return y
