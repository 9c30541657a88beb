"""Orbax checkpoints of a run: ``latest`` to resume, ``best`` by validation AUC.

Saving is asynchronous: ``save`` returns once the arrays are copied off the
devices and Orbax writes them in a background thread while training goes on.
A checkpoint only appears under its final name when completely written, so
a kill during a write leaves the previous one to resume from.

A checkpoint holds two items: ``state`` (parameters, BatchNorm statistics,
optimizer state, step) and ``meta`` (JSON: phase, epoch, early-stopping and
plateau state, data position, metric history). ``meta`` is read first because
the optimizer state's structure depends on the phase it belongs to.
"""

import logging
import pathlib
import time

import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp


def _manager(directory: pathlib.Path, max_to_keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(directory.absolute(), options=options)


def _abstract(target, sharding):
  """Shapes and dtypes of ``target`` placed on ``sharding``: what Orbax restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      target)


def _agreed(decision: bool) -> bool:
  """Process 0's decision on every process: Orbax saves are collective, and each
  process's clock would decide differently."""
  if jax.process_count() == 1:
    return decision
  return bool(multihost_utils.broadcast_one_to_all(np.bool_(decision)))


def has_checkpoint(workdir: str | pathlib.Path) -> bool:
  """Whether the workdir holds a finished ``latest`` checkpoint to resume from."""
  latest = pathlib.Path(workdir) / 'checkpoints' / 'latest'
  return latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir())


class RunCheckpoints:
  """The ``checkpoints/latest`` and ``checkpoints/best`` managers of a workdir.

  ``max_blocked_share`` bounds the time ``save_latest`` blocks training, as a
  share of the wall time since this object was made (``train.checkpoint_share``).
  """

  def __init__(self, workdir: str | pathlib.Path, *, keep_latest: int = 2,
               max_blocked_share: float = 1.0):
    root = pathlib.Path(workdir) / 'checkpoints'
    self.latest = _manager(root / 'latest', keep_latest)
    self.best = _manager(root / 'best', 1)
    self.max_blocked_share = max_blocked_share
    self._started = time.perf_counter()
    self._blocked = 0.0  # seconds save_latest has blocked so far
    self._last_blocked = 0.0

  def save_latest(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
    """Starts an asynchronous ``latest`` save unless it would exceed the blocking budget.

    A save is skipped when the time saves have blocked, plus the last save's
    block, would pass ``max_blocked_share`` of the wall time so far: with short
    epochs (seconds) only every few epochs are saved, bounding the work a
    kill -9 can lose to about (one save's block ÷ share) seconds. ``force``
    saves regardless (the end of a phase). Returns whether it saved.
    """
    elapsed = time.perf_counter() - self._started
    if not force and not _agreed(
        self._blocked + self._last_blocked <= self.max_blocked_share * elapsed):
      return False
    start = time.perf_counter()
    self.save(self.latest, step, state, meta)
    self._last_blocked = time.perf_counter() - start
    self._blocked += self._last_blocked
    return True

  def save(self, manager: ocp.CheckpointManager, step: int, state, meta: dict, *,
           wait: bool = False) -> None:
    """Starts writing a checkpoint; ``wait`` blocks until it is on disk.

    A previous save still being written by the same manager is finished first.
    """
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               meta=ocp.args.JsonSave(meta)))
    if wait:
      manager.wait_until_finished()

  def wait(self) -> None:
    """Blocks until every checkpoint started is written."""
    self.best.wait_until_finished()
    self.latest.wait_until_finished()

  def latest_meta(self) -> dict | None:
    """The newest ``meta`` item, or None when the run has no checkpoint yet."""
    return self.read_meta(self.latest)

  @staticmethod
  def read_meta(manager: ocp.CheckpointManager) -> dict | None:
    step = manager.latest_step()
    if step is None:
      return None
    return manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']

  @staticmethod
  def restore_state(manager: ocp.CheckpointManager, target, sharding):
    """Restores ``state`` with the structure and dtypes of ``target`` on ``sharding``.

    Only shapes and dtypes of ``target`` are read, so it may hold donated arrays.
    """
    step = manager.latest_step()
    return manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(_abstract(target, sharding))))['state']

  def restore_latest(self, make_target, sharding):
    """(meta, state) of the newest readable ``latest`` checkpoint, or (None, None).

    ``make_target(meta)`` gives the state's structure (it depends on the
    phase the meta names). A checkpoint that cannot be read — a partial write,
    a corrupted file — is skipped with a warning and the one before is used.
    """
    for step in sorted(self.latest.all_steps(), reverse=True):
      try:
        meta = self.latest.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))['meta']
        state = self.latest.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_abstract(make_target(meta), sharding))))['state']
        return meta, state
      except Exception as error:  # pylint: disable=broad-except  (any unreadable file)
        logging.warning('Checkpoint %s/%d cannot be read (%s: %s); resuming from the one '
                        'before.', self.latest.directory, step, type(error).__name__,
                        str(error)[:200])
    return None, None

  def close(self) -> None:
    self.latest.close()
    self.best.close()
