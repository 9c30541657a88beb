import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax import defaults, models
from mammojax.models import heads
from mammojax.training import steps


@pytest.mark.parametrize('width, expected', [(2048, 32), (1024, 32), (512, 16), (128, 8),
                                             (1000, 32), (96, 8)])
def test_rule_of_thumb_width(width, expected):
  assert heads.rule_of_thumb_width(width) == expected


def model_config(backbone, **overrides):
  config = defaults.base_config().model
  config.update(dict(backbone=backbone, **overrides))
  return config


def test_resnet50_has_keras_blocks_and_output_shape():
  model = models.create_classifier(model_config('resnet50'), seed=0)
  assert len(model.block_names) == 17
  assert model.block_names[:3] == ('stem', 'conv2_block1', 'conv2_block2')
  assert model.block_names[-1] == 'conv5_block3'
  features = model.backbone(jnp.zeros((2, 64, 64, 1)), train=False)
  assert features.shape == (2, 2, 2, 2048)
  assert model.head.hidden[0].out_features == 32  # sqrt(2048) → 32


def test_unknown_backbone_lists_valid_choices():
  with pytest.raises(ValueError, match=r"valid choices: \[.*'resnet50', .*'small_cnn'"):
    models.create_classifier(model_config('resnet5'), seed=0)


def test_dropout_depends_on_key_and_is_off_in_inference():
  model = models.create_classifier(model_config('small_cnn', dropout=0.9), seed=0)
  graphdef, params, stats = steps.split_model(model)
  images = jax.random.normal(jax.random.key(1), (4, 32, 32, 1))
  run = lambda **kw: steps.apply_model(graphdef, params, stats, images, **kw)[0]
  key_a, key_b = jax.random.key(0), jax.random.key(1)
  assert np.array_equal(run(train=True, dropout_key=key_a), run(train=True, dropout_key=key_a))
  assert not np.array_equal(run(train=True, dropout_key=key_a),
                            run(train=True, dropout_key=key_b))
  assert np.array_equal(run(train=False), run(train=False))


def test_frozen_blocks_keep_their_batchnorm_statistics():
  model = models.create_classifier(model_config('small_cnn'), seed=0)
  graphdef, params, stats = steps.split_model(model)
  images = 3.0 + jax.random.normal(jax.random.key(1), (4, 32, 32, 1))
  _, new_stats = steps.apply_model(graphdef, params, stats, images, train=True,
                                   frozen_blocks=2, dropout_key=jax.random.key(0))
  blocks_old, blocks_new = stats['backbone']['blocks'], new_stats['backbone']['blocks']
  for index in (0, 1):
    jax.tree.map(np.testing.assert_array_equal, blocks_old[index], blocks_new[index])
  assert not np.array_equal(blocks_old[2]['conv1']['bn']['mean'],
                            blocks_new[2]['conv1']['bn']['mean'])
