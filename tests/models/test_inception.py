"""InceptionV3 is keras.applications.InceptionV3 layer for layer, and computes the same."""

import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import inception
from tests.models import keras_reference

SIZE = inception.MIN_INPUT_SIZE  # 75: the smallest input Keras accepts


def build_model(seed: int = 0) -> inception.InceptionV3:
  """The model with numpy-drawn parameters: JAX's random init compiles once per
  kernel shape (about a minute for InceptionV3 on 2 cores) and no test here
  needs its distribution."""
  model = nnx.eval_shape(lambda: inception.InceptionV3(rngs=nnx.Rngs(0)))
  rng = np.random.default_rng(seed)
  for path, variable in nnx.iter_graph(model):
    if isinstance(variable, nnx.Param):
      value = rng.normal(0, 0.05, variable.shape)
    elif isinstance(variable, nnx.BatchStat):
      value = np.ones(variable.shape) if path[-1] == 'var' else np.zeros(variable.shape)
    else:
      continue
    variable.set_value(jnp.asarray(value, variable.dtype))
  return model


def randomise_keras_weights(model, seed: int) -> None:
  """He-normal kernels; offsets and moving statistics away from 0/1, so that a
  wrong mapping cannot hide behind Keras' defaults."""
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    shape = tuple(variable.shape)
    if variable.name == 'kernel':
      value = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
    elif variable.name in ('moving_variance', 'gamma'):
      value = rng.uniform(0.5, 1.5, shape)
    else:  # beta, bias, moving_mean
      value = rng.normal(0, 0.1, shape)
    variable.assign(value.astype(np.float32))


@pytest.fixture(scope='module')
def abstract_model():
  return nnx.eval_shape(lambda: inception.InceptionV3(rngs=nnx.Rngs(0)))


@pytest.fixture(scope='module')
def keras_model():
  """Keras' InceptionV3, built in a fresh session so its layers get their canonical
  names (conv2d, conv2d_1, ...), any input size."""
  os.environ.setdefault('KERAS_BACKEND', 'jax')
  keras = pytest.importorskip('keras')
  keras.backend.clear_session()
  # Variables are left uninitialised and drawn with numpy: Keras' initialisers
  # compile once per kernel shape, 45 s for this model.
  with keras.StatelessScope(initialize_variables=False):
    model = keras.applications.InceptionV3(weights=None, include_top=False,
                                           input_shape=(None, None, 3))
  randomise_keras_weights(model, seed=0)
  keras.backend.clear_session()  # forgets the variables it was to initialise
  return model


def our_shapes(module) -> list[tuple[int, ...]]:
  """Our arrays in the order Keras stores a layer's weights."""
  names = ('scale', 'bias', 'mean', 'var') if isinstance(module, nnx.BatchNorm) else (
      'kernel', 'bias')
  return [getattr(module, name).shape for name in names if getattr(module, name) is not None]


def test_blocks_are_stem_then_eleven_mixed_blocks(abstract_model):
  assert abstract_model.block_names == ('stem',) + tuple(f'mixed{i}' for i in range(11))
  assert len(abstract_model.blocks) == 12


def test_every_parameter_and_statistic_lives_under_blocks(abstract_model):
  assert list(nnx.to_pure_dict(nnx.state(abstract_model, nnx.Param))) == ['blocks']
  assert list(nnx.to_pure_dict(nnx.state(abstract_model))) == ['blocks']


def test_average_pooling_ignores_the_padding_like_keras():
  x = jnp.arange(9.0).reshape(1, 3, 3, 1)
  pooled = inception.AvgPool()(x, train=False)
  assert pooled[0, 0, 0, 0] == pytest.approx((0 + 1 + 3 + 4) / 4)
  assert pooled[0, 1, 1, 0] == pytest.approx(4.0)


def test_output_shape_matches_keras(abstract_model, keras_model):
  for height, width in ((SIZE, SIZE), (80, 97), (299, 299)):
    images = jax.ShapeDtypeStruct((2, height, width, 3), jnp.float32)
    ours = nnx.eval_shape(lambda m, x: m(x, train=False), abstract_model, images)
    assert ours.shape == tuple(keras_model.compute_output_shape(images.shape))
  assert abstract_model.out_features == keras_model.output_shape[-1] == 2048


def test_inputs_below_75_pixels_are_refused(abstract_model):
  images = jax.ShapeDtypeStruct((2, SIZE, SIZE - 1, 3), jnp.float32)
  with pytest.raises(ValueError, match='at least 75x75'):
    nnx.eval_shape(lambda m, x: m(x, train=False), abstract_model, images)


def test_keras_layers_are_the_keras_weighted_layers_in_order(abstract_model, keras_model):
  ours = abstract_model.keras_layers()
  theirs = [layer for layer in keras_model.layers if layer.weights]
  assert [name for name, _ in ours] == [layer.name for layer in theirs]
  for (name, module), layer in zip(ours, theirs):
    assert our_shapes(module) == [tuple(w.shape) for w in layer.weights], name
  sizes = [leaf.size for leaf in jax.tree.leaves(nnx.state(abstract_model))]
  assert sum(sizes) == keras_model.count_params()


def test_frozen_blocks_keep_their_batchnorm_statistics():
  model = build_model()
  before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))['blocks']
  images = 1.0 + jax.random.normal(jax.random.key(1), (2, SIZE, SIZE, 3))
  nnx.jit(lambda m, x: m(x, train=True, frozen_blocks=3))(model, images)
  after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))['blocks']
  for index in range(3):
    jax.tree.map(np.testing.assert_array_equal, before[index], after[index])
  for index in range(3, 12):  # the trained blocks do update theirs
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), before[index], after[index])
    assert all(jax.tree.leaves(changed)), f'block {index} kept its statistics'


def test_keras_weights_give_keras_features(keras_model, tmp_path):
  from mammojax.models import keras_weights
  path = keras_reference.save_legacy_h5(keras_model, tmp_path / 'inception_v3_notop.h5')
  model = build_model(seed=1)
  keras_weights.load_keras_weights(model, path)
  images = np.random.default_rng(2).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
  expected = keras_model.predict(images, batch_size=2, verbose=0)
  ours = np.asarray(nnx.jit(lambda m, x: m(x, train=False))(model, jnp.asarray(images)))
  error = keras_reference.relative_error(ours, expected)
  print(f'InceptionV3 max relative error vs Keras: {error:.2e}')
  assert error <= 1e-4
