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
