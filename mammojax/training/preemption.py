"""Surviving preemption: SIGTERM or SIGINT finish the current step, checkpoint, exit.

Clusters and preemptible TPUs send SIGTERM before they kill a job. While a
``PreemptionGuard`` is active the signal only sets a flag; the training loop
checks it after every step, writes a checkpoint holding the position inside
the epoch, and raises ``Preempted``. The next start resumes at that batch,
with the same data order and random draws, so the run ends as if never
stopped. A second SIGINT (Ctrl-C twice) interrupts at once.
"""

import logging
import signal
import threading


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

  def __enter__(self) -> 'PreemptionGuard':
    if threading.current_thread() is threading.main_thread():  # signals need the main thread
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
