"""Attention modules for the U-Nets: Oktay's attention gate and squeeze-and-excitation.

Both produce coefficients in [0, 1] that rescale a feature map: the gate per
pixel (where to look), squeeze-and-excitation per channel (what to look for).
"""

from flax import nnx
import jax
import jax.numpy as jnp


class AttentionGate(nnx.Module):
  """Additive attention gate on a skip connection (Oktay et al. 2018, Attention U-Net).

  ``x`` is the skip (fine, ``skip_features`` channels) and ``g`` the gating
  signal from the next coarser level (``gate_features`` channels, half ``x``'s
  height and width). As in the authors' code, ``W_x`` is a 2x2 stride-2
  convolution so both terms meet at ``g``'s resolution; the coefficients are
  then resampled (bilinear) back to ``x``.
  """

  def __init__(self, skip_features: int, gate_features: int, inter_features: int, *,
               rngs: nnx.Rngs):
    self.theta_x = nnx.Conv(skip_features, inter_features, (2, 2), strides=(2, 2),
                            padding='VALID', use_bias=False, rngs=rngs)
    self.phi_g = nnx.Conv(gate_features, inter_features, (1, 1), rngs=rngs)
    self.psi = nnx.Conv(inter_features, 1, (1, 1), rngs=rngs)

  def coefficients(self, x: jax.Array, g: jax.Array) -> jax.Array:
    """Attention coefficients α in [0, 1], shape (N, H, W, 1) at ``x``'s resolution."""
    theta = self.theta_x(x)
    if theta.shape[1:3] != g.shape[1:3]:
      raise ValueError(f'Attention gate: skip of shape {x.shape} needs a gating signal of '
                       f'height/width {theta.shape[1:3]}, got {g.shape}.')
    alpha = nnx.sigmoid(self.psi(nnx.relu(theta + self.phi_g(g))))
    return jax.image.resize(alpha, x.shape[:3] + (1,), method='bilinear')

  def __call__(self, x: jax.Array, g: jax.Array) -> jax.Array:
    """The skip ``x`` weighted pixel by pixel."""
    return x * self.coefficients(x, g)


class SqueezeExcitation(nnx.Module):
  """Channel attention (Hu et al. 2018): avg pool → dense C/r → ReLU → dense C → sigmoid."""

  def __init__(self, features: int, *, reduction: int = 16, rngs: nnx.Rngs):
    # Narrow maps (tests, tiny U-Nets) would round C/r to zero units.
    hidden = max(1, features // reduction)
    self.squeeze = nnx.Linear(features, hidden, rngs=rngs)
    self.excite = nnx.Linear(hidden, features, rngs=rngs)

  def scales(self, x: jax.Array) -> jax.Array:
    """Per-channel scales in [0, 1], shape (N, C)."""
    pooled = jnp.mean(x, axis=(1, 2))
    return nnx.sigmoid(self.excite(nnx.relu(self.squeeze(pooled))))

  def __call__(self, x: jax.Array) -> jax.Array:
    """``x`` with every channel multiplied by its scale."""
    return x * self.scales(x)[:, None, None, :]
