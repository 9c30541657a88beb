"""The phase loop: epochs of jitted steps, validation, checkpoints, counters.

Resume order (big_vision style), decided in ``mammojax.train``: an existing
checkpoint in the workdir → pretrained weights → random initialisation.
"""

import dataclasses
import sys
import time

import jax
import numpy as np
import tqdm

from mammojax.data import augment, pipeline
from mammojax.evaluation import metrics as metrics_lib
from mammojax.training import optim, parallel, steps


@dataclasses.dataclass(frozen=True)
class Phase:
  """A resolved phase: its config, freeze boundary, labels and optimizer."""
  name: str
  config: object
  frozen_blocks: int
  trainable_params: int
  unfrozen_blocks: tuple[str, ...]
  tx: object


def resolve_phases(config, params, block_names) -> list[Phase]:
  """Checks every phase up front, so a bad phase 3 fails before phase 1 runs."""
  names = [n.strip() for n in config.schedule.split(',') if n.strip()]
  if not names:
    raise ValueError('config.schedule names no phase; e.g. --config.schedule=warmup,finetune.')
  phases = []
  for name in names:
    if name not in config.phases:
      raise ValueError(f'Unknown phase {name!r} in config.schedule; valid choices: '
                       f'{sorted(config.phases)}.')
    phase = config.phases[name]
    frozen = optim.frozen_blocks_for(phase.unfreeze, block_names, config.model.backbone)
    labels = optim.parameter_labels(params, frozen)
    tx = optim.make_optimizer(phase, labels, config.train.grad_accumulation)
    phases.append(Phase(name, phase, frozen, optim.count_trainable(params, labels),
                        tuple(block_names[frozen:]), tx))
  return phases


def predict_examples(eval_fn, params, batch_stats, source: pipeline.ArraySource, *,
                     batch_size: int, mesh) -> np.ndarray:
  """``eval_fn``'s per-example outputs (probabilities, features) for all of ``source``."""
  batches = pipeline.eval_batches(source, global_batch_size=batch_size,
                                  process_index=jax.process_index(),
                                  process_count=jax.process_count())
  outputs = [eval_fn(params, batch_stats, parallel.put_batch(b, mesh)) for b in batches]
  return np.concatenate([parallel.gather(o) for o in outputs])[:len(source)]


def predict_with_tta(eval_fn, params, batch_stats, source: pipeline.ArraySource, *,
                     batch_size: int, mesh, tta: bool) -> np.ndarray:
  """Class probabilities, averaged over flipped views when ``tta`` (data.tta)."""
  if not tta:
    return predict_examples(eval_fn, params, batch_stats, source, batch_size=batch_size,
                            mesh=mesh)
  views = augment.tta_views(source.images)
  return augment.tta_average([
      predict_examples(eval_fn, params, batch_stats, pipeline.ArraySource(view, source.labels),
                       batch_size=batch_size, mesh=mesh) for view in views])


def run_batches(step_fn, state, batches, *, lr_scale: float, mesh, description: str,
                stop=lambda: False):
  """Steps over ``batches``; returns (state, step outputs, seconds, stopped).

  ``stop()`` is asked after every step (a preemption signal): the loop ends
  there, and ``stopped`` tells the caller the epoch is unfinished.
  """
  scale = jax.device_put(np.float32(lr_scale), parallel.replicated(mesh))
  outputs, stopped, start = [], False, time.perf_counter()
  show_bar = sys.stderr.isatty() and jax.process_index() == 0
  for batch in tqdm.tqdm(batches, desc=description, leave=False, disable=not show_bar):
    state, out = step_fn(state, parallel.put_batch(batch, mesh), scale)
    outputs.append(out)
    if stop():
      stopped = True
      break
  jax.block_until_ready(state)
  return state, outputs, time.perf_counter() - start, stopped


def train_epoch(step_fn, state, source, *, data_config, seed: int, epoch: int,
                lr_scale: float, mesh, description: str, start_batch: int = 0,
                stop=lambda: False):
  """One epoch of training from batch ``start_batch``.

  Returns (state, train metrics, images per second, batches run or None when
  the epoch finished); metrics cover the batches run in this call.
  """
  batches = pipeline.train_batches(
      source, global_batch_size=data_config.batch_size, seed=seed, epoch=epoch,
      augmentation=data_config.augmentation, process_index=jax.process_index(),
      process_count=jax.process_count(), balance=data_config.balance, start_batch=start_batch)
  state, outputs, seconds, stopped = run_batches(step_fn, state, batches, lr_scale=lr_scale,
                                                 mesh=mesh, description=description, stop=stop)
  position = start_batch + len(outputs) if stopped else None
  # Train metrics on the augmented, dropout-on predictions seen by each step.
  all_probs = np.concatenate([parallel.gather(o['probs']) for o in outputs])
  all_labels = np.concatenate([parallel.gather(o['labels']) for o in outputs])
  loss = float(np.mean([float(o['loss']) for o in outputs]))
  if not np.isfinite(loss):  # the phase loop stops the run; no metric of NaNs
    return state, {'loss': loss}, len(all_labels) / seconds, position
  metrics = metrics_lib.classification_metrics(all_labels, all_probs)
  metrics['loss'] = loss
  return state, metrics, len(all_labels) / seconds, position


def make_state(params, batch_stats, tx, mesh, step: int = 0) -> steps.TrainState:
  state = steps.TrainState(params=params, batch_stats=batch_stats,
                           opt_state=tx.init(params), step=np.int32(step))
  return parallel.put_replicated(state, mesh)
