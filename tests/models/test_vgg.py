"""VGG16/VGG19 are keras.applications.VGG16/VGG19 layer for layer, and compute the same."""

import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import vgg
from tests.models import keras_reference

SIZE = vgg.MIN_INPUT_SIZE  # 32: the smallest input Keras accepts
NETWORKS = {'vgg16': (vgg.VGG16, 'VGG16'), 'vgg19': (vgg.VGG19, 'VGG19')}


def abstract(name: str) -> vgg.VGG:
  return nnx.eval_shape(lambda: NETWORKS[name][0](rngs=nnx.Rngs(0)))


def build_model(name: str, seed: int = 0) -> vgg.VGG:
  """The model with numpy-drawn parameters: JAX's random init compiles once per
  kernel shape, and no test here needs its distribution."""
  model = abstract(name)
  rng = np.random.default_rng(seed)
  for _, variable in nnx.iter_graph(model):
    if isinstance(variable, nnx.Param):
      variable.set_value(jnp.asarray(rng.normal(0, 0.05, variable.shape), variable.dtype))
  return model


@pytest.fixture(scope='module', params=sorted(NETWORKS))
def keras_model(request):
  """(name, Keras model) built in a fresh session, any input size, He-normal kernels
  and non-zero biases drawn with numpy (Keras' initialisers compile per shape)."""
  os.environ.setdefault('KERAS_BACKEND', 'jax')
  keras = pytest.importorskip('keras')
  keras.backend.clear_session()
  with keras.StatelessScope(initialize_variables=False):
    model = getattr(keras.applications, NETWORKS[request.param][1])(
        weights=None, include_top=False, input_shape=(None, None, 3))
  rng = np.random.default_rng(0)
  for variable in model.weights:
    shape = tuple(variable.shape)
    std = np.sqrt(2 / np.prod(shape[:-1])) if variable.name == 'kernel' else 0.1
    variable.assign(rng.normal(0, std, shape).astype(np.float32))
  keras.backend.clear_session()  # forgets the variables it was to initialise
  return request.param, model


@pytest.mark.parametrize('name, convs', [('vgg16', 13), ('vgg19', 16)])
def test_five_blocks_of_convs_and_a_pool(name, convs):
  model = abstract(name)
  assert model.block_names == ('block1', 'block2', 'block3', 'block4', 'block5')
  assert sum(len(block.convs) for block in model.blocks) == convs
  assert list(nnx.to_pure_dict(nnx.state(model, nnx.Param))) == ['blocks']
  assert list(nnx.to_pure_dict(nnx.state(model))) == ['blocks']


def test_stage_depths_must_name_five_stages():
  with pytest.raises(ValueError, match='5 stages'):
    vgg.VGG(stage_depths=(2, 2, 3), rngs=nnx.Rngs(0))


def test_inputs_below_32_pixels_are_refused():
  images = jax.ShapeDtypeStruct((2, SIZE - 1, SIZE, 3), jnp.float32)
  with pytest.raises(ValueError, match='at least 32x32'):
    nnx.eval_shape(lambda m, x: m(x, train=False), abstract('vgg16'), images)


def test_output_shape_and_layers_match_keras(keras_model):
  name, keras_model = keras_model
  model = abstract(name)
  for height, width in ((SIZE, SIZE), (48, 67), (224, 224)):
    images = jax.ShapeDtypeStruct((2, height, width, 3), jnp.float32)
    ours = nnx.eval_shape(lambda m, x: m(x, train=False), model, images)
    assert ours.shape == tuple(keras_model.compute_output_shape(images.shape))
  assert model.out_features == keras_model.output_shape[-1] == 512
  ours = model.keras_layers()
  theirs = [layer for layer in keras_model.layers if layer.weights]
  assert [layer_name for layer_name, _ in ours] == [layer.name for layer in theirs]
  for (_, conv), layer in zip(ours, theirs):
    assert [conv.kernel.shape, conv.bias.shape] == [tuple(w.shape) for w in layer.weights]
  sizes = [leaf.size for leaf in jax.tree.leaves(nnx.state(model))]
  assert sum(sizes) == keras_model.count_params()


def test_keras_weights_give_keras_features(keras_model, tmp_path):
  name, keras_model = keras_model
  from mammojax.models import keras_weights
  path = keras_reference.save_legacy_h5(keras_model, tmp_path / f'{name}_notop.h5')
  model = build_model(name, seed=1)
  keras_weights.load_keras_weights(model, path)
  images = np.random.default_rng(2).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
  expected = keras_model.predict(images, batch_size=2, verbose=0)
  ours = np.asarray(nnx.jit(lambda m, x: m(x, train=False))(model, jnp.asarray(images)))
  error = keras_reference.relative_error(ours, expected)
  print(f'{name} max relative error vs Keras: {error:.2e}')
  assert error <= 1e-4
