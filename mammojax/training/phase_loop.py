"""The phase loop every task shares: resume, train epochs, validate, checkpoint.

A task (classification, segmentation, autoencoder pretraining) gives its
``TaskHooks``: how to build a phase's jitted step, how to run one training
epoch, how to validate and which validation metric decides early stopping
and the best checkpoint. Everything else — phases in order, the optimizer
state rebuilt at each phase change, early stopping, reduce-on-plateau,
``latest``/``best`` checkpoints after every epoch, metrics.csv — is here,
once.
"""

import dataclasses
import logging
import math
import time
from typing import Any, Callable

from mammojax.training import loop, parallel, preemption
from mammojax.training.progress import Progress


@dataclasses.dataclass(frozen=True)
class TaskHooks:
  """What differs between tasks.

  Attributes:
    make_step: phase → jitted train step.
    train_epoch: (step_fn, state, *, epoch, lr_scale, description, start_batch,
      stop) → (state, train metrics dict with 'loss', examples per second,
      the batch it stopped at when ``stop()`` said so, else None).
    validate: (state, epoch) → validation metrics (with 'loss' and ``monitor``);
      ``epoch`` is the 0-based global epoch just trained.
    monitor: the validation metric to maximise ('auc', 'dice', '-loss' style
      metrics must be given as higher-is-better values).
  """
  make_step: Callable[[Any], Any]
  train_epoch: Callable[..., tuple]
  validate: Callable[[Any], dict]
  monitor: str


def resume(checkpoints, phases, params, batch_stats, mesh):
  """(progress, state) from the latest checkpoint, or fresh ones."""
  def target(meta):
    phase = phases[Progress.from_json(meta).phase_index]
    return loop.make_state(params, batch_stats, phase.tx, mesh)

  meta, state = checkpoints.restore_latest(target, parallel.replicated(mesh))
  if meta is None:
    progress = Progress()
    progress.start_phase(0, phases[0].config)
    return progress, loop.make_state(params, batch_stats, phases[0].tx, mesh)
  progress = Progress.from_json(meta)
  logging.info('Resumed from epoch %d (phase %s, epoch %d of it).', progress.global_epoch,
               phases[progress.phase_index].name, progress.epoch_in_phase)
  return progress, state


def _record_epoch(progress, phase, train_metrics, val_metrics, *, lr_scale, per_second,
                  seconds):
  progress.phase_seconds[phase.name] = progress.phase_seconds.get(phase.name, 0.0) + seconds
  progress.history.append({
      'phase': phase.name, 'epoch': progress.global_epoch,
      'epoch_in_phase': progress.epoch_in_phase, 'phase_epochs': phase.config.epochs,
      'lr_scale': lr_scale, 'images_per_second': per_second, 'seconds': seconds,
      **{f'train_{k}': v for k, v in train_metrics.items()},
      **{f'val_{k}': v for k, v in val_metrics.items()}})


class NonFiniteLoss(ValueError):
  """The training loss became NaN or Inf: the run stops, its last good checkpoint kept."""


def check_finite(loss: float, phase_name: str, progress: Progress, step: int) -> None:
  """Stops the run before a NaN/Inf epoch can be checkpointed."""
  if not math.isfinite(loss):
    raise NonFiniteLoss(
        f'The training loss became {loss} in phase {phase_name}, epoch '
        f'{progress.epoch_in_phase + 1} (step {step}); the last good checkpoint (epoch '
        f'{progress.global_epoch}) is kept. Lower the learning rate or check the data '
        '(data_report.json), then re-run the same command to resume from it.')


def _checkpoint_and_stop(checkpoints, state, progress, phase, stopped_at: int, guard) -> None:
  """Saves the position inside the epoch, then raises ``Preempted``."""
  progress.batch_in_epoch = stopped_at
  checkpoints.save(checkpoints.latest, int(state.step), state, progress.to_json(), wait=True)
  raise preemption.Preempted(
      f'{guard.signal_name}: stopped in phase {phase.name}, epoch '
      f'{progress.epoch_in_phase + 1}, after batch {stopped_at} (step {int(state.step)}); '
      'checkpoint saved. Re-run the same command to resume there.')


def run_phases(hooks: TaskHooks, phases, state, progress, *, mesh, checkpoints, writer,
               on_epoch: Callable[[Progress], None] | None = None):
  """Trains every remaining phase, checkpointing after each epoch.

  SIGTERM/SIGINT finish the current step, checkpoint and raise
  ``preemption.Preempted``. ``on_epoch(progress)``, when given, runs after
  each epoch's checkpoint (a hyperparameter search reports the validation
  metric there, and may stop the run by raising).
  """
  with preemption.PreemptionGuard() as guard:
    return _run_phases(hooks, phases, state, progress, guard, mesh=mesh,
                       checkpoints=checkpoints, writer=writer, on_epoch=on_epoch)


def _run_phases(hooks, phases, state, progress, guard, *, mesh, checkpoints, writer, on_epoch):
  total_epochs = sum(p.config.epochs for p in phases)
  for index in range(progress.phase_index, len(phases)):
    phase = phases[index]
    if index != progress.phase_index:
      progress.start_phase(index, phase.config)
      state = loop.make_state(state.params, state.batch_stats, phase.tx, mesh, int(state.step))
    logging.info('Phase %s: %d trainable parameters, unfrozen blocks: %s', phase.name,
                 phase.trainable_params, ', '.join(phase.unfrozen_blocks) or 'none')
    step_fn = hooks.make_step(phase)
    while not progress.phase_finished(phase.config):
      start = time.perf_counter()
      state, train_metrics, per_second, stopped_at = hooks.train_epoch(
          step_fn, state, epoch=progress.global_epoch, lr_scale=progress.lr_scale,
          description=f'{phase.name} {progress.epoch_in_phase + 1}/{phase.config.epochs}',
          start_batch=progress.batch_in_epoch, stop=guard.should_stop)
      if stopped_at is not None:
        _checkpoint_and_stop(checkpoints, state, progress, phase, stopped_at, guard)
      progress.batch_in_epoch = 0
      check_finite(train_metrics['loss'], phase.name, progress, int(state.step))
      val_metrics = hooks.validate(state, progress.global_epoch)
      lr_scale = progress.lr_scale
      improved = progress.end_epoch(phase.config, val_metrics, monitor=hooks.monitor)
      _record_epoch(progress, phase, train_metrics, val_metrics, lr_scale=lr_scale,
                    per_second=per_second, seconds=time.perf_counter() - start)
      if improved:  # best written before latest: a kill in between re-runs an identical epoch
        checkpoints.save(checkpoints.best, progress.global_epoch,
                         {'params': state.params, 'batch_stats': state.batch_stats},
                         {'epoch': progress.global_epoch,
                          f'val_{hooks.monitor}': progress.best_val_metric}, wait=True)
      # Written in the background while the next epoch trains; after short epochs, only
      # as often as train.checkpoint_share allows, and always at the end of a phase.
      checkpoints.save_latest(int(state.step), state, progress.to_json(),
                              force=progress.phase_finished(phase.config))
      elapsed = sum(progress.phase_seconds.values())
      remaining = total_epochs - progress.global_epoch  # upper bound (early stopping)
      writer.write_epoch(progress.history, elapsed / progress.global_epoch * remaining)
      if on_epoch is not None:
        on_epoch(progress)
  checkpoints.wait()
  return state, progress
