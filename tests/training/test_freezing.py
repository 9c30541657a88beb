"""Frozen parameters and statistics stay bit-identical and hold no optimizer state."""

import jax
import numpy as np
import optax

from mammojax import defaults, models
from mammojax.training import optim, parallel, steps


def build(unfreeze, optimizer='adam'):
  model = models.create_classifier(defaults.base_config().model, seed=0)
  graphdef, params, stats = steps.split_model(model)
  phase = defaults.phase(epochs=1, unfreeze=unfreeze, optimizer=optimizer,
                         learning_rate=1e-2, momentum=0.9, weight_decay=1e-4)
  frozen = optim.frozen_blocks_for(unfreeze, model.block_names, 'small_cnn')
  labels = optim.parameter_labels(params, frozen)
  return graphdef, params, stats, frozen, labels, optim.make_optimizer(phase, labels)


def run_steps(graphdef, params, stats, frozen, tx, num_steps=3):
  mesh = parallel.create_mesh()
  state = parallel.put_replicated(steps.TrainState(params, stats, tx.init(params),
                                                   np.int32(0)), mesh)
  step_fn = steps.jit_train_step(steps.StepConfig(graphdef, frozen, seed=0), tx, mesh)
  rng = np.random.default_rng(0)
  for _ in range(num_steps):
    batch = {'image': rng.normal(2.0, 1.0, (8, 32, 32, 1)).astype(np.float32),
             'label': rng.integers(0, 2, 8).astype(np.int32),
             'weight': np.ones(8, np.float32)}
    state, _ = step_fn(state, parallel.put_batch(batch, mesh), np.float32(1.0))
  return state


def test_frozen_blocks_unchanged_trainable_changed():
  graphdef, params, stats, frozen, labels, tx = build('2', optimizer='sgd')
  before = jax.tree.map(np.array, (params, stats))
  state = run_steps(graphdef, params, stats, frozen, tx)
  assert frozen == 3  # stem, block1, block2 frozen; block3, block4 and head train
  new_blocks = state.params['backbone']['blocks']  # a dict keyed by block index
  for index, old_p in before[0]['backbone']['blocks'].items():
    new_p = new_blocks[index]
    changed = any(not np.array_equal(a, b) for a, b in
                  zip(jax.tree.leaves(old_p), jax.tree.leaves(new_p)))
    assert changed == (index >= frozen), index
  assert len(new_blocks) == 5
  for index, old_s in before[1]['backbone']['blocks'].items():
    new_s = state.batch_stats['backbone']['blocks'][index]
    changed = any(not np.array_equal(a, b) for a, b in
                  zip(jax.tree.leaves(old_s), jax.tree.leaves(new_s)))
    assert changed == (index >= frozen), index
  assert not np.array_equal(before[0]['head']['logits']['kernel'],
                            state.params['head']['logits']['kernel'])


def test_frozen_parameters_hold_no_optimizer_state():
  _, params, _, _, labels, tx = build('1', optimizer='adam')
  state_size = sum(x.size for x in jax.tree.leaves(tx.init(params)))
  trainable = optim.count_trainable(params, labels)
  total = sum(x.size for x in jax.tree.leaves(params))
  assert 0 < trainable < total
  assert state_size == 2 * trainable + 1  # Adam's mu and nu for trainables, one count


def test_every_parameter_gets_a_label():
  _, params, _, _, labels, _ = build('all')
  assert set(jax.tree.leaves(labels)) == {'trainable'}
  assert jax.tree.structure(labels) == jax.tree.structure(params)


def test_invalid_unfreeze_explains_the_range():
  import pytest
  with pytest.raises(ValueError, match=r"unfreeze='all' or an integer 0..5 for small_cnn"):
    optim.frozen_blocks_for('9', ('stem', 'b1', 'b2', 'b3', 'b4'), 'small_cnn')
  assert optim.frozen_blocks_for('all', ('stem', 'b1'), 'x') == 0
  assert optim.frozen_blocks_for('0', ('stem', 'b1'), 'x') == 2
  assert isinstance(optax.set_to_zero(), optax.GradientTransformation)
