"""The benchmarks' shared timing helpers (no torch or keras: the peers run as scripts)."""

import json
import time

import pytest

from benchmarks import timing


class AsyncFakeClock:
  """A clock where steps only queue work, as JAX's asynchronous dispatch does.

  ``step`` queues the next cost; only ``sync`` advances the clock by the
  queued work, so a window that read the clock before syncing would see 0 s.
  """

  def __init__(self, costs):
    self.now, self.pending, self.costs = 100.0, 0.0, iter(costs)

  def perf_counter(self):
    return self.now

  def step(self):
    self.pending += next(self.costs)

  def sync(self):
    self.now, self.pending = self.now + self.pending, 0.0


def test_median_window_first_step_and_sync(monkeypatch):
  # first step 5 s, one warm-up step, then windows of 2 steps lasting 0.2, 0.4 and 0.1 s.
  clock = AsyncFakeClock([5.0, 0.1, 0.1, 0.1, 0.2, 0.2, 0.05, 0.05])
  monkeypatch.setattr(timing.time, 'perf_counter', clock.perf_counter)
  result = timing.measure_throughput(clock.step, batch_size=4, warmup_steps=1, windows=3,
                                     steps_per_window=2, sync=clock.sync)
  assert result['first_step_seconds'] == pytest.approx(5.0)
  assert result['windows'] == pytest.approx([40.0, 20.0, 80.0])
  assert result['images_per_second'] == pytest.approx(40.0)
  assert result['steps_timed'] == 6


def test_real_clock_with_sleeping_step():
  calls = []

  def step():
    calls.append(None)
    time.sleep(0.01)

  result = timing.measure_throughput(step, batch_size=2, warmup_steps=2, windows=3,
                                     steps_per_window=2, sync=lambda: None)
  assert len(calls) == 1 + 2 + 3 * 2
  assert len(result['windows']) == 3
  assert result['first_step_seconds'] >= 0.01
  # Sleeping never returns early, so no window beats 2 images per 0.01 s.
  assert 0 < result['images_per_second'] <= 200


def test_no_windows_is_an_error():
  with pytest.raises(ValueError, match='at least one window'):
    timing.measure_throughput(lambda: None, batch_size=1, windows=0, sync=lambda: None)


def test_emit_prints_one_parsable_result_line(capsys):
  result = {'framework': 'torch', 'net': 'unet', 'windows': [1.5, 2.5]}
  print('some log line')
  timing.emit(result)
  out = capsys.readouterr().out
  result_lines = [line for line in out.splitlines() if line.startswith('RESULT ')]
  assert len(result_lines) == 1
  assert json.loads(result_lines[0][len('RESULT '):]) == result
  assert timing.parse_results(out) == [result]


def test_peak_rss_is_in_mebibytes():
  # A Python process holding pytest takes tens of MiB, never terabytes.
  assert 10 < timing.peak_rss_mb() < 1_000_000
