"""Framework-neutral timing helpers shared by every benchmark process.

Each measurement runs in its own process (so compile caches, thread pools and
peak memory do not leak between frameworks) and reports one ``RESULT <json>``
line on stdout, which the parent process parses.
"""

from collections.abc import Callable
import json
import resource
import statistics
import time
from typing import Any

RESULT_PREFIX = 'RESULT '


def measure_throughput(step: Callable[[], Any], *, batch_size: int, warmup_steps: int = 3,
                       windows: int = 5, steps_per_window: int = 5,
                       sync: Callable[[], Any]) -> dict:
  """Images/s of ``step`` (one training step on ``batch_size`` images).

  The first call is timed on its own (it holds tracing and compilation), then
  ``warmup_steps`` untimed steps let caches and allocators settle, then
  ``windows`` windows of ``steps_per_window`` steps are timed. ``sync()`` must
  block until every dispatched step has finished; it runs before each clock
  reading, so asynchronous dispatch (JAX) cannot end a window early.

  Returns images_per_second (the median window: robust to one window hit by
  another process on a shared machine), windows (each window's images/s),
  first_step_seconds and steps_timed.
  """
  if windows < 1 or steps_per_window < 1:
    raise ValueError(f'Need at least one window of one step; got windows={windows}, '
                     f'steps_per_window={steps_per_window}.')
  start = time.perf_counter()
  step()
  sync()
  first_step_seconds = time.perf_counter() - start
  for _ in range(warmup_steps):
    step()
  sync()
  rates = []
  for _ in range(windows):
    start = time.perf_counter()
    for _ in range(steps_per_window):
      step()
    sync()
    rates.append(batch_size * steps_per_window / (time.perf_counter() - start))
  return {'images_per_second': statistics.median(rates), 'windows': rates,
          'first_step_seconds': first_step_seconds, 'steps_timed': windows * steps_per_window}


def add_workload_arguments(parser) -> None:
  """The flags every training-step measurement shares: input, dtype and timing windows."""
  parser.add_argument('--size', type=int, default=128)
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  parser.add_argument('--windows', type=int, default=5)
  parser.add_argument('--steps-per-window', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=3)


def peak_rss_mb() -> float:
  """This process's peak resident memory in MiB (Linux reports ru_maxrss in KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jax_device_peak_mb() -> float | None:
  """Peak memory of JAX's first device in MiB, where the backend reports it (GPU, TPU)."""
  import jax  # pylint: disable=import-outside-toplevel
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get('peak_bytes_in_use')
  return None if peak is None else peak / 2**20


def emit(result: dict) -> None:
  """Prints ``RESULT <json>`` on one line for the parent process to parse."""
  print(RESULT_PREFIX + json.dumps(result, sort_keys=True), flush=True)


def parse_results(text: str) -> list[dict]:
  """The dicts of every ``RESULT`` line in a process's stdout, in order."""
  return [json.loads(line[len(RESULT_PREFIX):]) for line in text.splitlines()
          if line.startswith(RESULT_PREFIX)]

