"""Pure jitted steps of U-Nets: segmentation (masks) and autoencoding (input = output).

Same shape as the classifier's steps (``steps.py``): the model is split once,
merged only inside the traced function, the state donated. Unpadded U-Nets
answer for the centre of their input only, so targets are centre-cropped to
the output.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mammojax.models import unet
from mammojax.training import parallel, segmentation_losses, steps
from mammojax.training.steps import TrainState


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """What a step needs besides the state: static for one phase.

  ``loss`` is a segmentation loss name, or 'mse' for the autoencoder, whose
  target is its own input.
  """
  graphdef: Any
  frozen_blocks: int
  loss: str = 'bce_dice'
  dtype: str = 'float32'  # compute dtype (config.dtype); parameters stay float32


def step_loss(config: StepConfig, outputs: jax.Array, batch: dict) -> jax.Array:
  """The weighted loss of a batch; targets centre-cropped to the output size."""
  size = outputs.shape[1:3]
  if config.loss == 'mse':
    target = unet.center_crop(batch['image'], size)
    per_example = jnp.mean((outputs - target) ** 2, axis=(1, 2, 3))
    return jnp.sum(per_example * batch['weight']) / jnp.maximum(jnp.sum(batch['weight']), 1e-9)
  target = unet.center_crop(batch['mask'], size)
  return segmentation_losses.segmentation_loss(outputs, target, batch['weight'], name=config.loss)


def train_step(config: StepConfig, tx: optax.GradientTransformation, state: TrainState,
               batch: dict, lr_scale: jax.Array):
  """One optimisation step; ``lr_scale`` comes from reduce-on-plateau."""

  def loss_fn(params):
    outputs, batch_stats = steps.apply_model(
        config.graphdef, params, state.batch_stats, batch['image'], train=True,
        frozen_blocks=config.frozen_blocks, dtype=config.dtype)
    return step_loss(config, outputs, batch), batch_stats

  (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  updates = jax.tree.map(lambda u: u * lr_scale.astype(u.dtype), updates)
  new_state = TrainState(params=optax.apply_updates(state.params, updates),
                         batch_stats=batch_stats, opt_state=opt_state, step=state.step + 1)
  return new_state, {'loss': loss}


def predict_step(graphdef, sigmoid: bool, dtype: str, params, batch_stats, batch: dict):
  """Mask probabilities (sigmoid) or the reconstruction, in inference mode."""
  outputs, _ = steps.apply_model(graphdef, params, batch_stats, batch['image'], train=False,
                                 dtype=dtype)
  return jax.nn.sigmoid(outputs) if sigmoid else outputs


def jit_train_step(config: StepConfig, tx, mesh):
  """``train_step`` jitted with explicit shardings; the state is donated."""
  replicated, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  return jax.jit(functools.partial(train_step, config, tx),
                 in_shardings=(replicated, sharded, replicated),
                 out_shardings=(replicated, {'loss': replicated}), donate_argnums=(0,))


def jit_predict_step(graphdef, mesh, *, sigmoid: bool = True, dtype: str = 'float32'):
  replicated, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  return jax.jit(functools.partial(predict_step, graphdef, sigmoid, dtype),
                 in_shardings=(replicated, replicated, sharded), out_shardings=sharded)
