"""Asynchronous Orbax checkpoints: keep the last K and the best, safe under donation."""

import jax
import jax.numpy as jnp
import numpy as np

from mammojax.training import checkpoint, parallel


def state_of(value: float) -> dict:
  return {'params': {'w': jnp.full((64, 64), value)}, 'step': jnp.int32(value)}


def test_keeps_the_last_k_latest_and_the_single_best(tmp_path):
  checkpoints = checkpoint.RunCheckpoints(tmp_path, keep_latest=2)
  try:
    for step in range(1, 5):
      checkpoints.save(checkpoints.latest, step, state_of(step), {'epoch': step})
      if step in (1, 3):
        checkpoints.save(checkpoints.best, step, state_of(step), {'epoch': step}, wait=True)
    checkpoints.wait()
    assert checkpoints.latest.all_steps() == [3, 4]
    assert checkpoints.best.all_steps() == [3]
    assert checkpoints.latest_meta() == {'epoch': 4}
  finally:
    checkpoints.close()
  assert sorted(p.name for p in (tmp_path / 'checkpoints' / 'latest').iterdir()) == ['3', '4']


def test_an_async_save_survives_the_next_step_donating_the_state(tmp_path):
  """``save`` returns before the write ends; the step after it donates (deletes) the
  saved arrays at once, and the checkpoint must still hold their values."""
  mesh = parallel.create_mesh()
  state = parallel.put_replicated(state_of(1.0), mesh)
  expected = jax.tree.map(np.array, state)
  donate = jax.jit(lambda s: jax.tree.map(lambda x: x * 2, s), donate_argnums=0)
  checkpoints = checkpoint.RunCheckpoints(tmp_path)
  try:
    saved = state
    checkpoints.save(checkpoints.latest, 1, saved, {'epoch': 1})
    state = jax.block_until_ready(donate(saved))
    assert saved['params']['w'].is_deleted()  # the hazard is real on this backend
    checkpoints.wait()
    meta, restored = checkpoints.restore_latest(lambda meta: state,
                                                parallel.replicated(mesh))
  finally:
    checkpoints.close()
  assert meta == {'epoch': 1}
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.array, restored), expected)
  np.testing.assert_array_equal(np.array(state['params']['w']), 2 * expected['params']['w'])


class FakeClock:
  """perf_counter for ``checkpoint``: epochs and save blocks advance it by hand."""

  def __init__(self):
    self.now = 0.0

  def perf_counter(self) -> float:
    return self.now


def simulate_epochs(monkeypatch, tmp_path, share, *, epochs, epoch_s, block_s, force_every=0):
  """Runs ``save_latest`` after each simulated epoch; returns the epochs saved."""
  clock = FakeClock()
  monkeypatch.setattr(checkpoint, 'time', clock)

  def blocking_save(self, manager, step, state, meta, *, wait=False):
    clock.now += block_s

  monkeypatch.setattr(checkpoint.RunCheckpoints, 'save', blocking_save)
  checkpoints = checkpoint.RunCheckpoints(tmp_path, max_blocked_share=share)
  saved = []
  for epoch in range(1, epochs + 1):
    clock.now += epoch_s
    force = bool(force_every) and epoch % force_every == 0
    if checkpoints.save_latest(epoch, None, {'epoch': epoch}, force=force):
      saved.append(epoch)
  checkpoints.close()
  return saved, clock.now


def test_short_epochs_are_saved_only_as_often_as_the_share_allows(monkeypatch, tmp_path):
  saved, total = simulate_epochs(monkeypatch, tmp_path, 0.02, epochs=200, epoch_s=1.0,
                                 block_s=0.1)
  assert saved[0] == 1  # the first epoch is always saved
  assert len(saved) * 0.1 <= 0.02 * total + 0.1  # within budget, bar the first save
  assert len(saved) >= 0.02 * total / 0.1 - 2  # and uses it: no epochs skipped needlessly
  gaps = [b - a for a, b in zip(saved, saved[1:])]
  assert max(gaps[1:]) <= 0.1 / 0.02 + 1  # about block ÷ share seconds of work at risk
  assert gaps[0] <= 2 * 0.1 / 0.02  # the first save is paid back first


def test_long_epochs_and_share_one_save_every_epoch(monkeypatch, tmp_path):
  saved, _ = simulate_epochs(monkeypatch, tmp_path, 0.02, epochs=10, epoch_s=40.0,
                             block_s=0.4)
  assert saved == list(range(1, 11))
  saved, _ = simulate_epochs(monkeypatch, tmp_path, 1.0, epochs=10, epoch_s=0.2, block_s=0.1)
  assert saved == list(range(1, 11))


def test_a_phase_end_is_saved_whatever_the_budget(monkeypatch, tmp_path):
  saved, _ = simulate_epochs(monkeypatch, tmp_path, 1e-6, epochs=9, epoch_s=1.0, block_s=0.1,
                             force_every=3)
  assert saved == [1, 3, 6, 9]
