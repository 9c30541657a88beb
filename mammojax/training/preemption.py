"""Surviving preemption: SIGTERM or SIGINT finish the current step, checkpoint, exit.

Clusters and preemptible TPUs send SIGTERM before they kill a job. While a
``PreemptionGuard`` is active the signal only sets a flag; the training loop
checks it after every step, writes a checkpoint holding the position inside
the epoch, and raises ``Preempted``. The next start resumes at that batch,
with the same data order and random draws, so the run ends as if never
stopped. A second SIGINT (Ctrl-C twice) interrupts at once.

On several processes the signal may reach some of them only, or at
different steps; every process must still stop after the same step, or the
others would wait forever in the next step's collectives. ``should_stop``
therefore all-gathers the flags after every step: one tiny host collective,
so every process sees the same answer at the same step.
"""

import logging
import signal
import threading

import jax
import numpy as np


class Preempted(Exception):
  """Training stopped on a signal after checkpointing; re-run the same command to resume."""


class PreemptionGuard:
  """Context manager: SIGTERM/SIGINT set ``requested`` instead of killing the process."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = False
    self.signal_name = ''
    self._previous = {}

  def _handle(self, signum, frame):
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: stop now
    self.requested = True
    self.signal_name = signal.Signals(signum).name
    logging.warning('%s received: finishing the current step, then checkpointing.',
                    self.signal_name)
    del frame

  def should_stop(self) -> bool:
    """Whether any process was signalled (the same answer on every process)."""
    if jax.process_count() == 1:
      return self.requested
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    flags = multihost_utils.process_allgather(np.int32(self.requested))
    if np.any(flags) and not self.requested:
      self.requested = True
      self.signal_name = 'A signal to another process'
    return bool(np.any(flags))

  def __enter__(self) -> 'PreemptionGuard':
    if threading.current_thread() is threading.main_thread():  # signals need the main thread
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
