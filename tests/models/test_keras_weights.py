"""Keras application weight files load exactly (legacy .h5 and Keras 3 .weights.h5)."""

from flax import nnx
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import keras_weights, resnet
from tests.models.keras_reference import keras, randomise_batchnorm, relative_error
from tests.models.keras_reference import save_legacy_h5 as save_legacy


@pytest.fixture(scope='module')
def keras_resnet50(tmp_path_factory):
  model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
  randomise_batchnorm(model)
  folder = tmp_path_factory.mktemp('weights')
  return model, save_legacy(model, folder / 'resnet50_notop.h5'), folder


def test_legacy_h5_gives_keras_features(keras_resnet50):
  model, path, _ = keras_resnet50
  ours = resnet.ResNet(in_channels=3, rngs=nnx.Rngs(0))
  keras_weights.load_keras_weights(ours, path)
  images = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
  expected = np.asarray(model(images, training=False))
  assert relative_error(ours(jnp.asarray(images), train=False), expected) <= 1e-4


def test_keras3_weights_file_gives_the_same_parameters(keras_resnet50):
  model, legacy_path, folder = keras_resnet50
  path = folder / 'resnet50.weights.h5'
  model.save_weights(path)
  from_legacy = resnet.ResNet(in_channels=3, rngs=nnx.Rngs(0))
  from_keras3 = resnet.ResNet(in_channels=3, rngs=nnx.Rngs(1))
  keras_weights.load_keras_weights(from_legacy, legacy_path)
  keras_weights.load_keras_weights(from_keras3, path)
  for a, b in zip(jax_leaves(from_legacy), jax_leaves(from_keras3)):
    np.testing.assert_array_equal(a, b)


def jax_leaves(module):
  import jax
  return jax.tree.leaves(nnx.to_pure_dict(nnx.state(module)))


def test_file_with_top_loads_into_backbone(tmp_path):
  model = keras.applications.ResNet50(weights=None, include_top=True, input_shape=(64, 64, 3),
                                      pooling=None, classes=5)
  randomise_batchnorm(model)
  path = save_legacy(model, tmp_path / 'resnet50_top.h5')
  ours = resnet.ResNet(in_channels=3, rngs=nnx.Rngs(0))
  keras_weights.load_keras_weights(ours, path)
  features = keras.Model(model.input, model.get_layer('conv5_block3_out').output)
  images = np.random.default_rng(2).normal(size=(2, 64, 64, 3)).astype(np.float32)
  expected = np.asarray(features(images, training=False))
  assert relative_error(ours(jnp.asarray(images), train=False), expected) <= 1e-4


def test_grayscale_first_conv_is_the_sum_over_rgb(keras_resnet50):
  model, path, _ = keras_resnet50
  ours = resnet.ResNet(in_channels=1, rngs=nnx.Rngs(0))
  keras_weights.load_keras_weights(ours, path)
  gray = np.random.default_rng(3).normal(size=(2, 64, 64, 1)).astype(np.float32)
  expected = np.asarray(model(np.repeat(gray, 3, axis=-1), training=False))
  assert relative_error(ours(jnp.asarray(gray), train=False), expected) <= 1e-4


def test_another_networks_file_names_the_first_mismatch(tmp_path):
  vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
  path = save_legacy(vgg, tmp_path / 'vgg16.h5')
  ours = resnet.ResNet(in_channels=3, rngs=nnx.Rngs(0))
  before = jax_leaves(ours)
  with pytest.raises(keras_weights.WeightFileError, match=r"vgg16.h5.*(shape|layers)"):
    keras_weights.load_keras_weights(ours, path, model_name='resnet50')
  for a, b in zip(before, jax_leaves(ours)):  # nothing half-loaded
    np.testing.assert_array_equal(a, b)


def test_truncated_and_non_hdf5_files_are_named(keras_resnet50, tmp_path):
  _, path, _ = keras_resnet50
  truncated = tmp_path / 'truncated.h5'
  truncated.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
  ours = resnet.ResNet(in_channels=3, rngs=nnx.Rngs(0))
  with pytest.raises(keras_weights.WeightFileError, match='truncated.h5'):
    keras_weights.load_keras_weights(ours, truncated)
  text = tmp_path / 'weights.txt'
  text.write_text('hello')
  with pytest.raises(keras_weights.WeightFileError, match='not an HDF5 file'):
    keras_weights.load_keras_weights(ours, text)


@pytest.mark.parametrize('name, build', [('mobilenet', 'MobileNet'),
                                         ('mobilenet_v2', 'MobileNetV2')])
def test_depthwise_weights_load_from_both_layouts(tmp_path, name, build):
  from mammojax.models import mobilenet
  model = getattr(keras.applications, build)(weights=None, include_top=False,
                                             input_shape=(32, 32, 3))
  randomise_batchnorm(model)
  legacy = save_legacy(model, tmp_path / f'{name}.h5')
  keras3 = tmp_path / f'{name}.weights.h5'
  model.save_weights(keras3)
  images = np.random.default_rng(4).normal(size=(2, 32, 32, 3)).astype(np.float32)
  expected = np.asarray(model(images, training=False))
  for path in (legacy, keras3):
    ours = getattr(mobilenet, build)(in_channels=3, rngs=nnx.Rngs(0))
    keras_weights.load_keras_weights(ours, path)
    assert relative_error(ours(jnp.asarray(images), train=False), expected) <= 1e-4, path
