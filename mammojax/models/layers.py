"""Small building blocks shared by the backbones."""

import functools

from flax import nnx
import jax
import jax.numpy as jnp

from mammojax.models import batchnorm

_CHANNELS_LAST = ('NHWC', 'HWIO', 'NHWC')


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None, **kwargs):
  """``jax.lax.conv_general_dilated``, with 1×1 convolutions done as a matrix product.

  Passed to ``nnx.Conv(conv_general_dilated=...)``. A 1×1 convolution is a
  (pixels × in) @ (in × out) product, and XLA's CPU backend runs that product
  2-3× faster than the same convolution, backward pass included (measured in
  benchmarks/README.md); on accelerators both lower to the same matmul.
  Depthwise convolutions (one filter per channel) go to ``depthwise_conv``.
  Everything else goes to XLA's convolution unchanged.
  """
  plain = (lhs.ndim == 4 and not kwargs.get('out_sharding')
           and kwargs.get('preferred_element_type') is None
           and all(d == 1 for d in (lhs_dilation or (1, 1)) + (rhs_dilation or (1, 1)))
           and dimension_numbers == jax.lax.conv_dimension_numbers(
               lhs.shape, rhs.shape, _CHANNELS_LAST))
  if plain and feature_group_count == lhs.shape[-1] == rhs.shape[-1] > 1:
    return depthwise_conv(lhs, rhs, window_strides, padding)
  pointwise = (plain and rhs.shape[:2] == (1, 1) and feature_group_count == 1
               and padding in ('SAME', 'VALID'))
  if not pointwise:
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, feature_group_count,
                                        precision=precision, **kwargs)
  rows, cols = window_strides
  x = lhs[:, ::rows, ::cols, :]  # 'SAME' and 'VALID' agree for a 1×1 window
  product = jnp.dot(x.reshape(-1, x.shape[-1]), rhs[0, 0], precision=precision)
  return product.reshape(*x.shape[:-1], rhs.shape[-1])


def _taps(x, window, strides):
  """The kh·kw strided slices of NHWC ``x`` that a 'VALID' window reads, row-major."""
  rows = (x.shape[1] - window[0]) // strides[0] + 1
  cols = (x.shape[2] - window[1]) // strides[1] + 1
  return [x[:, i:i + (rows - 1) * strides[0] + 1:strides[0],
            j:j + (cols - 1) * strides[1] + 1:strides[1], :]
          for i in range(window[0]) for j in range(window[1])]


def depthwise_conv(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
  """A depthwise convolution (``kernel``: kh × kw × 1 × channels) as a sum of scaled taps.

  Each output is Σ over the window of (shifted input slice) × (that tap's
  per-channel weight): elementwise work that XLA fuses into one loop, forward
  and backward. XLA's CPU backend runs the grouped convolution this replaces
  4-80× slower (MobileNet's 3×3 layers, benchmarks/README.md).
  """
  window = kernel.shape[:2]
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(x.shape[1:3], window, strides, padding)
  x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  # Sums in float32 whatever the compute dtype, as a convolution accumulates.
  accumulate = jnp.promote_types(x.dtype, jnp.float32)
  weights = kernel[:, :, 0].reshape(-1, kernel.shape[-1]).astype(accumulate)
  total = None
  for tap, weight in zip(_taps(x, window, strides), weights):
    tap = tap.astype(accumulate) * weight
    total = tap if total is None else total + tap
  return total.astype(jnp.result_type(x, kernel))


def patch_conv_transpose(module: nnx.ConvTranspose, x: jax.Array) -> jax.Array:
  """``module(x)`` for a transposed convolution whose stride equals its kernel ('VALID').

  Each input pixel then paints its own kh × kw output patch: one matrix
  product (pixels × in) @ (in × kh·kw·out) and a depth-to-space reshape. XLA's
  CPU backend computes the same layer's kernel gradient as a dilated
  convolution over the whole image, about a third of a U-Net step at 256 px
  (benchmarks/README.md). Values equal ``nnx.ConvTranspose``'s, whose kernel is
  applied flipped in space (``lax.conv_transpose``).
  """
  window = tuple(module.kernel_size)
  if (tuple(module.strides or (1, 1)) != window or module.padding != 'VALID' or x.ndim != 4
      or module.transpose_kernel or module.kernel_dilation not in (None, 1, (1, 1))):
    return module(x)
  bias = module.bias[...] if module.bias is not None else None
  x, kernel, bias = module.promote_dtype((x, module.kernel[...], bias), dtype=module.dtype)
  batch, rows, cols, features = x.shape
  kernel = kernel[::-1, ::-1]
  out = kernel.shape[-1]
  painted = jnp.dot(x.reshape(-1, features),
                    kernel.transpose(2, 0, 1, 3).reshape(features, -1),
                    precision=module.precision)
  painted = painted.reshape(batch, rows, cols, *window, out).transpose(0, 1, 3, 2, 4, 5)
  painted = painted.reshape(batch, rows * window[0], cols * window[1], out)
  return painted if bias is None else painted + bias


class ConvBN(nnx.Module):
  """Convolution followed by BatchNorm.

  ``momentum`` is the running-statistics decay: Keras uses 0.99, which needs
  hundreds of steps to settle; small medical sets train for fewer, so the
  configs default to 0.9 (``config.model.batchnorm_momentum``).
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: int, *,
               rngs: nnx.Rngs, strides: int = 1, padding='SAME',
               use_bias: bool = False, epsilon: float = 1e-3, momentum: float = 0.9,
               use_scale: bool = True):
    self.conv = nnx.Conv(in_features, out_features, (kernel_size, kernel_size),
                         strides=(strides, strides), padding=padding,
                         use_bias=use_bias, conv_general_dilated=conv_general_dilated,
                         rngs=rngs)
    self.bn = batchnorm.BatchNorm(out_features, momentum=momentum, epsilon=epsilon,
                                  use_scale=use_scale, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.conv.bias is None:
      return self.bn(self.conv(x), use_running_average=not train)
    # Training-mode BatchNorm subtracts the batch mean, which cancels the conv's
    # bias exactly (Keras' ResNet has one): adding it would cost a pass over the
    # activations for a zero gradient, so only the running mean moves by it.
    return self.bn(self._convolve_without_bias(x), use_running_average=False,
                   shift=self.conv.bias[...])

  def _convolve_without_bias(self, x: jax.Array) -> jax.Array:
    conv = self.conv
    x, kernel = conv.promote_dtype((x, conv.kernel[...]), dtype=conv.dtype)
    return conv_general_dilated(x, kernel, conv.strides, conv.padding,
                                dimension_numbers=jax.lax.conv_dimension_numbers(
                                    x.shape, kernel.shape, _CHANNELS_LAST),
                                precision=conv.precision)


def max_pool(x: jax.Array, window: int, stride: int, pad: int = 0) -> jax.Array:
  """Max pooling with explicit zero padding, as Keras' ZeroPadding2D + MaxPool2D.

  Zero padding equals -inf padding here because inputs follow a ReLU. The
  maximum is taken over the window's strided slices rather than with
  ``reduce_window``, whose gradient XLA's CPU backend computes through a
  select-and-gather over index tensors; the gradient is ``_max_pool_backward``
  (benchmarks/README.md). Values and gradients equal ``reduce_window``'s: a
  tied maximum's gradient goes to the first tap in row-major order.
  """
  if pad:
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  rows = (x.shape[1] - window) // stride + 1
  cols = (x.shape[2] - window) // stride + 1
  if rows < 1 or cols < 1:
    raise ValueError(f'max_pool: a {window}×{window} window does not fit a '
                     f'{x.shape[1]}×{x.shape[2]} feature map; use larger input images.')
  return _max_pool_valid(x, window, stride)




@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool_valid(x, window, stride):
  return _max_pool_forward(x, window, stride)[0]


def _max_pool_forward(x, window, stride):
  taps = _taps(x, (window, window), (stride, stride))
  pooled = functools.reduce(jnp.maximum, taps)
  # Index of the first tap holding the maximum: the backward pass reads it
  # instead of recomputing the maximum once per tap, as autodiff's fusion does.
  winner = jnp.full(pooled.shape, len(taps), jnp.int8)
  for index in reversed(range(len(taps))):
    winner = jnp.where(taps[index] == pooled, jnp.int8(index), winner)
  return pooled, (winner, x.shape)


def _max_pool_backward(window, stride, residuals, grad):
  winner, shape = residuals
  # Each of the window² taps reads ``grad``. XLA's CPU backend would fuse its
  # producers (DenseNet's: the BatchNorm gradients of a whole dense block) into
  # every tap and compute them up to 4 times; a matrix product is never fused
  # into a loop, so multiplying by the identity (≈1% of the pooling's cost)
  # makes XLA materialise ``grad`` once. (XLA CPU drops optimization_barrier.)
  grad = jnp.dot(grad, jnp.eye(grad.shape[-1], dtype=grad.dtype),
                 precision=jax.lax.Precision.HIGHEST)  # exact on TPUs too
  rows, cols = grad.shape[1:3]
  zero = jnp.zeros((), grad.dtype)
  total = None
  for index in range(window * window):
    i, j = divmod(index, window)
    routed = jnp.where(winner == index, grad, zero)
    # Scatter the tap's share back to its strided positions with interior padding.
    placed = jax.lax.pad(routed, zero, (
        (0, 0, 0), (i, shape[1] - i - (rows - 1) * stride - 1, stride - 1),
        (j, shape[2] - j - (cols - 1) * stride - 1, stride - 1), (0, 0, 0)))
    total = placed if total is None else total + placed
  return (total,)


_max_pool_valid.defvjp(_max_pool_forward, _max_pool_backward)


class BlockBackbone(nnx.Module):
  """A feature extractor made of ``self.blocks``, named by ``self.block_names``.

  Subclasses build the blocks; running them and listing their Keras layers is
  the same for every network. Each block provides ``keras_layers(name)``.
  """

  def __call__(self, x: jax.Array, *, train: bool, frozen_blocks: int = 0) -> jax.Array:
    """Runs the blocks; the first ``frozen_blocks`` use BatchNorm running stats."""
    for index, block in enumerate(self.blocks):
      x = block(x, train=train and index >= frozen_blocks)
    return x

  def keras_layers(self) -> list[tuple[str, nnx.Module]]:
    """(Keras layer name, module) for every weighted layer, in Keras' order."""
    return [pair for name, block in zip(self.block_names, self.blocks)
            for pair in block.keras_layers(name)]
