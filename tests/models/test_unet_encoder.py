from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import heads, unet, unet_encoder
from mammojax.models.classifier import Classifier
from mammojax.training import optim, steps


def make_backbone(seed=0, **kwargs):
  return unet_encoder.EncoderClassifierBackbone(1, depth=3, width=4, rngs=nnx.Rngs(seed),
                                                **kwargs)


def pure(module, kind):
  return nnx.to_pure_dict(nnx.state(module, kind))


def test_attention_features_are_three_times_128():
  backbone = make_backbone()
  assert backbone.block_names == ('enc1', 'enc2', 'enc3', 'bottleneck', 'features')
  assert backbone.out_features == 384
  features = backbone(jax.random.normal(jax.random.key(0), (2, 32, 40, 1)), train=True)
  assert features.shape == (2, 1, 1, 384)
  assert (np.asarray(features) >= 0).all()  # dense 128 + ReLU per depth


def test_global_max_pool_variant_is_the_max_of_each_tapped_level():
  backbone = make_backbone(attention=False)
  assert backbone.out_features == 8 + 16 + 32  # widths of enc2, enc3, bottleneck
  images = jax.random.normal(jax.random.key(0), (2, 32, 32, 1))
  levels = unet.run_levels(backbone.blocks[:-1], images, train=False)
  expected = np.concatenate([np.asarray(x).max(axis=(1, 2)) for x in levels[1:]], axis=-1)
  np.testing.assert_array_equal(backbone(images, train=False)[:, 0, 0], expected)


def test_feature_levels_are_configurable_and_checked():
  backbone = make_backbone(attention=False, feature_levels=(0, -1))
  assert backbone.feature_levels == (0, 3) and backbone.out_features == 4 + 32
  with pytest.raises(ValueError, match=r'level indices in -4\.\.3 for depth 3'):
    make_backbone(feature_levels=(4,))


def test_too_small_input_is_rejected():
  with pytest.raises(ValueError, match='at least 8 pixels'):
    make_backbone()(jnp.zeros((1, 4, 32, 1)), train=False)


@pytest.mark.parametrize('frozen, changed', [(5, set()), (3, {3}), (0, {0, 1, 2, 3})])
def test_frozen_blocks_keep_their_batchnorm_statistics(frozen, changed):
  backbone = make_backbone()
  before = pure(backbone, nnx.BatchStat)
  backbone(3.0 + jax.random.normal(jax.random.key(1), (4, 32, 32, 1)), train=True,
           frozen_blocks=frozen)
  after = pure(backbone, nnx.BatchStat)
  for index in range(4):
    equal = jax.tree.leaves(jax.tree.map(np.array_equal, before['blocks'][index],
                                         after['blocks'][index]))
    assert all(equal) == (index not in changed)


def test_classifier_parameters_are_labelled_by_block():
  backbone = make_backbone()
  model = Classifier(backbone, heads.Head(backbone.out_features, 2, rngs=nnx.Rngs(1)))
  _, params, _ = steps.split_model(model)
  frozen = optim.frozen_blocks_for('1', model.block_names, 'unet_encoder')
  labels = optim.parameter_labels(params, frozen)
  assert frozen == 4
  assert set(jax.tree.leaves(labels['backbone']['blocks'][4])) == {'trainable'}
  for index in range(4):
    assert set(jax.tree.leaves(labels['backbone']['blocks'][index])) == {'frozen'}
  logits = model(jnp.ones((2, 32, 32, 1)), train=False)
  assert logits.shape == (2, 2)


def test_copy_encoder_makes_encoder_weights_bit_identical():
  autoencoder = unet.UNetAutoencoder(1, depth=3, width=4, rngs=nnx.Rngs(7))
  # A training-mode call moves the autoencoder's BatchNorm statistics off their init.
  autoencoder(2.0 + jax.random.normal(jax.random.key(0), (2, 32, 32, 1)), train=True)
  backbone = make_backbone(seed=1)
  model = Classifier(backbone, heads.Head(backbone.out_features, 2, rngs=nnx.Rngs(1)))
  features_before = pure(backbone.blocks[-1], nnx.Param)
  source = pure(autoencoder.encoder, ...)['blocks']
  assert not np.array_equal(source[0]['convs']['conv1']['conv']['kernel'],
                            pure(backbone, nnx.Param)['blocks'][0]['convs']['conv1']['conv']
                            ['kernel'])
  unet_encoder.copy_encoder(autoencoder, model)
  target = pure(backbone, ...)['blocks']
  for index in range(4):
    assert jax.tree.structure(source[index]) == jax.tree.structure(target[index])
    jax.tree.map(np.testing.assert_array_equal, source[index], target[index])
  jax.tree.map(np.testing.assert_array_equal, features_before,
               pure(backbone.blocks[-1], nnx.Param))


def test_copy_encoder_names_the_mismatch():
  autoencoder = unet.UNetAutoencoder(1, depth=2, width=4, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r'source widths \(4, 8, 16\).*target widths '
                                       r'\(4, 8, 16, 32\)'):
    unet_encoder.copy_encoder(autoencoder, make_backbone())
  with pytest.raises(ValueError, match='needs a U-Net'):
    unet_encoder.copy_encoder(make_backbone(), make_backbone())
