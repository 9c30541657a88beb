"""bfloat16 compute with float32 parameters (config.dtype), and gradient accumulation."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax import defaults, models
from mammojax.training import optim, parallel, precision, segmentation_steps, steps


def classifier(**model_fields):
  config = defaults.base_config().model
  config.update(model_fields)
  return steps.split_model(models.create_classifier(config, seed=0))


def batch_of(size, rng, image_side=32):
  return {'image': rng.uniform(0, 1, (size, image_side, image_side, 1)).astype(np.float32),
          'label': rng.integers(0, 2, size).astype(np.int32),
          'weight': np.ones(size, np.float32)}


def conv_output_dtypes(function, *args) -> set[str]:
  """The dtypes of every convolution's output in ``function``'s jaxpr."""
  text = str(jax.make_jaxpr(function)(*args))
  return set(re.findall(r':(\w+)\[[^\]]*\] = conv_general_dilated', text))


def test_unknown_dtype_is_refused_with_the_choices():
  with pytest.raises(ValueError, match=r"config.dtype 'float16'.*bfloat16"):
    precision.compute_dtype('float16')


@pytest.mark.parametrize('input_mode', ['none', 'caffe'])
def test_bfloat16_convolutions_run_in_bfloat16_and_logits_are_float32(input_mode):
  graphdef, params, stats = classifier(input_preprocessing=input_mode)
  images = jnp.ones((2, 32, 32, 1))

  def forward(dtype):
    return lambda p: steps.apply_model(graphdef, p, stats, images, train=True, dtype=dtype,
                                       dropout_key=jax.random.key(0))[0]

  assert conv_output_dtypes(forward('bfloat16'), params) == {'bf16'}
  assert conv_output_dtypes(forward('float32'), params) == {'f32'}
  assert forward('bfloat16')(params).dtype == jnp.float32


def train_once(dtype, graphdef, params, stats, batch, frozen=0, tx=None):
  """One step from copies of ``params`` and ``stats`` (the step donates its state)."""
  params, stats = jax.tree.map(np.array, (params, stats))
  mesh = parallel.create_mesh()
  labels = optim.parameter_labels(params, frozen)
  phase = defaults.phase(epochs=1, unfreeze='all', optimizer='adam', learning_rate=1e-3)
  tx = tx or optim.make_optimizer(phase, labels)
  state = parallel.put_replicated(
      steps.TrainState(params, stats, tx.init(params), np.int32(0)), mesh)
  step_fn = steps.jit_train_step(steps.StepConfig(graphdef, frozen, seed=0, dtype=dtype),
                                 tx, mesh)
  return step_fn(state, parallel.put_batch(batch, mesh), np.float32(1.0))


def test_bfloat16_step_keeps_float32_state_and_a_close_loss():
  graphdef, params, stats = classifier(dropout=0.0)
  batch = batch_of(8, np.random.default_rng(0))
  state16, out16 = train_once('bfloat16', graphdef, params, stats, batch)
  _, out32 = train_once('float32', graphdef, params, stats, batch)
  leaves = jax.tree.leaves((state16.params, state16.batch_stats, state16.opt_state))
  assert {x.dtype for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)} == {np.dtype('float32')}
  assert float(out16['loss']) == pytest.approx(float(out32['loss']), rel=2e-2)
  assert not np.array_equal(state16.params['head']['logits']['kernel'],
                            params['head']['logits']['kernel'])


def test_bfloat16_unet_step_keeps_float32_parameters():
  config = defaults.base_config().model
  config.unet.update(depth=2, width=4)
  config.dropout = 0.0
  graphdef, params, stats = steps.split_model(models.create_unet(config, seed=0))
  mesh = parallel.create_mesh()
  labels = optim.parameter_labels(params, 0)
  tx = optim.make_optimizer(defaults.phase(epochs=1, unfreeze='all', optimizer='adam',
                                           learning_rate=1e-3), labels)
  state = parallel.put_replicated(
      steps.TrainState(params, stats, tx.init(params), np.int32(0)), mesh)
  step_fn = segmentation_steps.jit_train_step(
      segmentation_steps.StepConfig(graphdef, 0, 'bce_dice', 'bfloat16'), tx, mesh)
  rng = np.random.default_rng(0)
  batch = {'image': rng.uniform(0, 1, (4, 32, 32, 1)).astype(np.float32),
           'mask': (rng.uniform(0, 1, (4, 32, 32, 1)) > 0.7).astype(np.float32),
           'weight': np.ones(4, np.float32)}
  state, out = step_fn(state, parallel.put_batch(batch, mesh), np.float32(1.0))
  assert np.isfinite(float(out['loss']))
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {np.dtype('float32')}


def test_accumulating_two_batches_equals_one_step_on_both():
  """Head-only phase without dropout: the backbone runs on its running statistics, so
  two accumulated batches of 8 give exactly the update of one batch of 16."""
  graphdef, params, stats = classifier(dropout=0.0)
  frozen = len(models.create_classifier(defaults.base_config().model, seed=0).block_names)
  labels = optim.parameter_labels(params, frozen)
  phase = defaults.phase(epochs=1, unfreeze='0', optimizer='adam', learning_rate=1e-2)
  rng = np.random.default_rng(1)
  first, second = batch_of(8, rng), batch_of(8, rng)
  both = {k: np.concatenate([first[k], second[k]]) for k in first}

  mesh = parallel.create_mesh()
  accumulating = optim.make_optimizer(phase, labels, accumulation=2)
  state = parallel.put_replicated(jax.tree.map(np.array, steps.TrainState(
      params, stats, accumulating.init(params), np.int32(0))), mesh)
  step_fn = steps.jit_train_step(steps.StepConfig(graphdef, frozen, seed=0), accumulating, mesh)
  state, _ = step_fn(state, parallel.put_batch(first, mesh), np.float32(1.0))
  np.testing.assert_array_equal(state.params['head']['logits']['kernel'],
                                params['head']['logits']['kernel'])  # no update yet
  state, _ = step_fn(state, parallel.put_batch(second, mesh), np.float32(1.0))

  single, _ = train_once('float32', graphdef, params, stats, both, frozen=frozen,
                         tx=optim.make_optimizer(phase, labels))
  for ours, reference in zip(jax.tree.leaves(state.params), jax.tree.leaves(single.params)):
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)
  assert not np.array_equal(state.params['head']['logits']['kernel'],
                            params['head']['logits']['kernel'])


@pytest.mark.parametrize('value', [0, -2, 1.5, '2'])
def test_bad_accumulation_is_refused(value):
  graphdef, params, stats = classifier()
  del graphdef, stats
  phase = defaults.phase(epochs=1, unfreeze='all', optimizer='sgd', learning_rate=1e-2)
  with pytest.raises(ValueError, match='train.grad_accumulation'):
    optim.make_optimizer(phase, optim.parameter_labels(params, 0), accumulation=value)
