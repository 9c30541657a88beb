"""MobileNet V1/V2 have the layers, shapes and outputs of keras.applications."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import mobilenet
from tests.models.keras_reference import keras, randomise_batchnorm, relative_error

# Odd, non-square: Keras pads MobileNet's strided blocks at the end only and
# MobileNetV2's on both sides for odd sizes; 'SAME' everywhere would fail one.
INPUT_SHAPE = (67, 45, 3)
NETS = {
    'MobileNet': dict(
        ours=mobilenet.MobileNet,
        blocks=('stem', *(f'conv_dw_{i}' for i in range(1, 14))),
        features=(2, 2, 1, 1024), keras_count=3_228_864),
    'MobileNetV2': dict(
        ours=mobilenet.MobileNetV2,
        blocks=('stem', *(f'block_{i}' for i in range(1, 17)), 'Conv_1'),
        features=(2, 3, 2, 1280), keras_count=2_257_984),
}


def randomise_weights(model, seed=0):
  """Random kernels and BN statistics, so a wrong mapping cannot hide behind 0/1.

  Keras' Glorot init shrinks depthwise outputs by ~sqrt(C), so the features would
  barely depend on the input and ReLU6 would never clip. He-normal kernels keep
  activations at a scale where a plain ReLU in place of ReLU6 fails the test;
  MobileNetV2's linear projections get gain 1 so its residual sums stay small.
  """
  randomise_batchnorm(model, seed)
  rng = np.random.default_rng(seed + 1)
  for layer in model.layers:
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
      kernel = layer.get_weights()[0]
      fan_in = kernel.shape[0] * kernel.shape[1] * (
          1 if isinstance(layer, keras.layers.DepthwiseConv2D) else kernel.shape[2])
      gain = 1 if layer.name.endswith('project') else 2
      layer.set_weights([rng.normal(0, np.sqrt(gain / fan_in), kernel.shape)])


def our_variables(module):
  """Our variables that hold a Keras layer's weights, in Keras' order."""
  names = (('scale', 'bias', 'mean', 'var') if isinstance(module, nnx.BatchNorm)
           else ('kernel', 'bias'))
  return [getattr(module, name) for name in names if getattr(module, name) is not None]


def is_depthwise(module):
  return isinstance(module, nnx.Conv) and module.feature_group_count > 1


def keras_shape(module, shape):
  """Depthwise kernels: ours (kh, kw, 1, C), Keras (kh, kw, C, 1)."""
  return (*shape[:2], shape[3], 1) if is_depthwise(module) and len(shape) == 4 else shape


def copy_keras_weights(model, keras_model):
  """Keras weights → ``model`` by zipping keras_layers() with Keras' weighted layers.

  Test-local: keras_weights.load_keras_weights does not yet accept the depthwise
  kernels Keras 3 saves as 'kernel' (Keras 2 files say 'depthwise_kernel').
  """
  theirs = [layer for layer in keras_model.layers if layer.weights]
  for (name, module), layer in zip(model.keras_layers(), theirs, strict=True):
    assert name == layer.name
    for variable, array in zip(our_variables(module), layer.get_weights(), strict=True):
      if is_depthwise(module) and array.ndim == 4:
        array = array.transpose(0, 1, 3, 2)
      assert array.shape == variable.shape, name
      variable.set_value(jnp.asarray(array))


def count(model, kind):
  return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, kind)))


@pytest.fixture(scope='module', params=sorted(NETS))
def nets(request):
  """(name, Keras model, our model with its weights copied in)."""
  keras_model = getattr(keras.applications, request.param)(
      weights=None, include_top=False, input_shape=INPUT_SHAPE)
  randomise_weights(keras_model)
  # Shapes only, then every variable written from Keras: one the mapping missed
  # stays abstract and the forward passes fail.
  model = nnx.eval_shape(lambda: NETS[request.param]['ours'](rngs=nnx.Rngs(0)))
  return request.param, keras_model, model


@pytest.fixture(scope='module')
def loaded(nets):
  name, keras_model, model = nets
  model = nnx.clone(model)
  copy_keras_weights(model, keras_model)
  return name, keras_model, model


def test_blocks_and_output_shape_match_keras(nets):
  name, keras_model, model = nets
  assert model.block_names == NETS[name]['blocks']
  assert len(model.blocks) == len(model.block_names)
  out = nnx.eval_shape(lambda model, x: model(x, train=False), model,
                       jax.ShapeDtypeStruct((2, *INPUT_SHAPE), jnp.float32))
  assert out.shape == (2, *keras_model.output_shape[1:]) == NETS[name]['features']
  assert model.out_features == out.shape[-1]


def test_keras_layers_match_keras_weighted_layers(nets):
  _, keras_model, model = nets
  theirs = [layer for layer in keras_model.layers if layer.weights]
  ours = model.keras_layers()
  assert [name for name, _ in ours] == [layer.name for layer in theirs]
  for (name, module), layer in zip(ours, theirs):
    assert ([keras_shape(module, v.shape) for v in our_variables(module)]
            == [tuple(w.shape) for w in layer.weights]), name
    assert is_depthwise(module) == isinstance(layer, keras.layers.DepthwiseConv2D), name
    if isinstance(module, nnx.BatchNorm):
      assert module.epsilon == pytest.approx(layer.epsilon), name


def test_every_parameter_is_in_a_block_and_counts_match_keras(nets):
  name, keras_model, model = nets
  assert list(nnx.to_pure_dict(nnx.state(model, nnx.Param))) == ['blocks']
  total = count(model, nnx.Param) + count(model, nnx.BatchStat)
  assert total == keras_model.count_params() == NETS[name]['keras_count']


def test_features_equal_keras_with_its_weights(loaded):
  _, keras_model, model = loaded
  images = np.random.default_rng(1).normal(size=(2, *INPUT_SHAPE)).astype(np.float32)
  expected = keras_model.predict(images, verbose=0)
  ours = np.asarray(nnx.jit(lambda model, x: model(x, train=False))(model, images))
  assert relative_error(ours, expected) <= 1e-4


def test_frozen_blocks_keep_their_batchnorm_statistics(loaded):
  _, _, model = loaded
  model = nnx.clone(model)
  before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))['blocks']
  images = 3.0 + jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  nnx.jit(lambda model, x: model(x, train=True, frozen_blocks=3))(model, images)
  after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))['blocks']
  for index in range(3):
    jax.tree.map(np.testing.assert_array_equal, before[index], after[index])
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), before[3], after[3])
  assert all(jax.tree.leaves(changed))
