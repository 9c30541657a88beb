"""DenseNet121 has the layers, shapes and outputs of keras.applications.DenseNet121."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import densenet, keras_weights
from tests.models.keras_reference import (keras, randomise_batchnorm, relative_error,
                                          save_legacy_h5)

# Odd, non-square: exercises the stem's padding and the transitions' floor pooling.
INPUT_SHAPE = (67, 45, 3)



def keras_shapes(module):
  """The weight shapes Keras stores for our ``module``, in Keras' order."""
  if isinstance(module, nnx.BatchNorm):
    return [v.shape for v in (module.scale, module.bias, module.mean, module.var)
            if v is not None]
  kernel = module.kernel.shape
  if module.feature_group_count > 1:  # depthwise: ours (kh, kw, 1, C), Keras (kh, kw, C, 1)
    kernel = kernel[:2] + (kernel[3], 1)
  return [kernel] + ([module.bias.shape] if module.bias is not None else [])


def count(model, kind):
  return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, kind)))


@pytest.fixture(scope='module')
def keras_model():
  model = keras.applications.DenseNet121(weights=None, include_top=False,
                                         input_shape=INPUT_SHAPE)
  randomise_batchnorm(model)
  return model


@pytest.fixture(scope='module')
def abstract_model():
  """Shapes only: building the 120 convolutions for real takes seconds."""
  return nnx.eval_shape(lambda: densenet.DenseNet(rngs=nnx.Rngs(0)))


def test_blocks_and_output_shape_match_keras(keras_model, abstract_model):
  names = abstract_model.block_names
  assert len(names) == len(abstract_model.blocks) == 62  # stem + 58 dense layers + 3 pools
  assert names[:3] == ('stem', 'conv2_block1', 'conv2_block2')
  assert names[6:9] == ('conv2_block6', 'pool2', 'conv3_block1')
  assert names[-1] == 'conv5_block16'
  assert sum(name.startswith('pool') for name in names) == 3
  forward = lambda model, x: model(x, train=False)
  out = nnx.eval_shape(forward, abstract_model, jax.ShapeDtypeStruct((2, *INPUT_SHAPE),
                                                                     jnp.float32))
  assert out.shape == (2, *keras_model.output_shape[1:]) == (2, 2, 1, 1024)
  assert abstract_model.out_features == 1024


def test_keras_layers_match_keras_weighted_layers(keras_model, abstract_model):
  theirs = [layer for layer in keras_model.layers if layer.weights]
  ours = abstract_model.keras_layers()
  assert [name for name, _ in ours] == [layer.name for layer in theirs]
  for (name, module), layer in zip(ours, theirs):
    assert keras_shapes(module) == [tuple(w.shape) for w in layer.weights], name
    if isinstance(module, nnx.BatchNorm):
      assert module.epsilon == pytest.approx(layer.epsilon), name


def test_every_parameter_is_in_a_block_and_counts_match_keras(keras_model, abstract_model):
  assert list(nnx.to_pure_dict(nnx.state(abstract_model, nnx.Param))) == ['blocks']
  total = count(abstract_model, nnx.Param) + count(abstract_model, nnx.BatchStat)
  assert total == keras_model.count_params() == 7_037_504


def test_features_equal_keras_after_loading_its_weights(keras_model, abstract_model,
                                                        tmp_path):
  path = save_legacy_h5(keras_model, tmp_path / 'densenet121_notop.h5')
  model = nnx.clone(abstract_model)
  # Every variable must be written: one the mapping missed stays abstract and fails below.
  keras_weights.load_keras_weights(model, path)
  images = np.random.default_rng(1).normal(size=(2, *INPUT_SHAPE)).astype(np.float32)
  expected = keras_model.predict(images, verbose=0)
  ours = np.asarray(nnx.jit(lambda model, x: model(x, train=False))(model, images))
  assert relative_error(ours, expected) <= 1e-4


def test_frozen_blocks_keep_their_batchnorm_statistics():
  # Compiled whole: op by op, every new shape would compile on its own.
  model = nnx.jit(lambda: densenet.DenseNet(stage_depths=(1, 1, 1, 1), in_channels=1,
                                            rngs=nnx.Rngs(0)))()
  before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))['blocks']
  images = 3.0 + jax.random.normal(jax.random.key(1), (2, 32, 32, 1))
  nnx.jit(lambda model, x: model(x, train=True, frozen_blocks=3))(model, images)
  after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))['blocks']
  assert model.block_names[:4] == ('stem', 'conv2_block1', 'pool2', 'conv3_block1')
  for index in range(3):
    jax.tree.map(np.testing.assert_array_equal, before[index], after[index])
  assert not np.array_equal(before[3]['bn0']['mean'], after[3]['bn0']['mean'])
