"""Pure, jitted train and eval steps over plain pytrees.

The model is split once (``nnx.split``) into a static graph definition and two
pytrees (parameters, BatchNorm statistics); the steps merge them only inside
the traced function, so dispatch stays fast and the state is plain arrays that
shard and checkpoint like any pytree.
"""

import dataclasses
import functools
from typing import Any

from flax import nnx
from flax import struct
import jax
import jax.numpy as jnp
import optax

from mammojax.training import losses, parallel, precision


@struct.dataclass
class TrainState:
  params: Any
  batch_stats: Any
  opt_state: Any
  step: jax.Array


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """What a step needs besides the state: static for one phase."""
  graphdef: Any
  frozen_blocks: int
  seed: int
  loss: str = 'cross_entropy'
  class_weights: tuple[float, ...] | None = None
  dtype: str = 'float32'  # compute dtype (config.dtype); parameters stay float32


def split_model(model: nnx.Module):
  """(graphdef, params, batch_stats) with plain-dict pytrees."""
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  return graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(batch_stats)


def apply_model(graphdef, params, batch_stats, images, *, dtype: str = 'float32',
                **call_kwargs):
  """Float32 outputs and the BatchNorm statistics after ``model(images, **call_kwargs)``.

  ``call_kwargs`` are the model's: ``train``, ``frozen_blocks``, and for a
  classifier ``dropout_key``. The network computes in ``dtype`` (see
  ``precision``); the caller's parameters and their gradients stay float32.
  """
  model = precision.set_compute_dtype(nnx.merge(graphdef, params, batch_stats), dtype)
  outputs = model(images.astype(precision.compute_dtype(dtype)), **call_kwargs)
  return outputs.astype(jnp.float32), nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))


def train_step(config: StepConfig, tx: optax.GradientTransformation, state: TrainState,
               batch: dict, lr_scale: jax.Array):
  """One optimisation step; ``lr_scale`` comes from reduce-on-plateau."""
  dropout_key = jax.random.fold_in(jax.random.key(config.seed), state.step)

  def loss_fn(params):
    logits, batch_stats = apply_model(
        config.graphdef, params, state.batch_stats, batch['image'], train=True,
        frozen_blocks=config.frozen_blocks, dropout_key=dropout_key, dtype=config.dtype)
    loss = losses.classification_loss(logits, batch['label'], batch['weight'],
                                      name=config.loss, class_weights=config.class_weights)
    return loss, (logits, batch_stats)

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  updates = jax.tree.map(lambda u: u * lr_scale.astype(u.dtype), updates)
  new_state = TrainState(params=optax.apply_updates(state.params, updates),
                         batch_stats=batch_stats, opt_state=opt_state, step=state.step + 1)
  return new_state, {'loss': loss, 'probs': jax.nn.softmax(logits), 'labels': batch['label']}


def eval_step(graphdef, dtype: str, params, batch_stats, batch: dict):
  """Class probabilities in inference mode."""
  logits, _ = apply_model(graphdef, params, batch_stats, batch['image'], train=False,
                          dtype=dtype)
  return jax.nn.softmax(logits)


def feature_step(graphdef, pooling: str, params, batch_stats, batch: dict):
  """Globally pooled backbone features in inference mode (for classical models)."""
  model = nnx.merge(graphdef, params, batch_stats)
  features = model.backbone(model.scale_input(batch['image']), train=False)
  pool = jnp.mean if pooling == 'avg' else jnp.max
  return pool(features.astype(jnp.float32), axis=(1, 2))


def jit_feature_step(graphdef, pooling: str, mesh):
  replicated, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  return jax.jit(functools.partial(feature_step, graphdef, pooling),
                 in_shardings=(replicated, replicated, sharded), out_shardings=sharded)


def jit_train_step(config: StepConfig, tx, mesh):
  """``train_step`` jitted with explicit shardings; the state is donated."""
  replicated, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  return jax.jit(functools.partial(train_step, config, tx),
                 in_shardings=(replicated, sharded, replicated),
                 out_shardings=(replicated, {'loss': replicated, 'probs': sharded,
                                              'labels': sharded}),
                 donate_argnums=(0,))


def jit_eval_step(graphdef, mesh, dtype: str = 'float32'):
  replicated, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  return jax.jit(functools.partial(eval_step, graphdef, dtype),
                 in_shardings=(replicated, replicated, sharded), out_shardings=sharded)
