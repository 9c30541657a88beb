from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.models import attention, unet


def make_unet(**kwargs):
  options = dict(depth=2, width=4, rngs=nnx.Rngs(0))
  options.update(kwargs)
  return unet.UNet(1, **options)


@pytest.mark.parametrize('use_attention', [False, True])
def test_padded_unet_and_attention_unet_keep_the_input_size(use_attention):
  model = make_unet(out_channels=2, depth=3, attention=use_attention)
  images = jax.random.normal(jax.random.key(0), (2, 32, 48, 1))
  logits = model(images, train=True)
  assert logits.shape == (2, 32, 48, 2)
  assert np.isfinite(np.asarray(logits)).all()
  assert all((level.gate is not None) == use_attention for level in model.decoder)


def test_padded_unet_names_the_nearest_valid_sides():
  model = make_unet(depth=3)
  with pytest.raises(ValueError, match=r'divisible by 8; got 36\. Resize or crop to 32 or 40'):
    model(jnp.zeros((1, 36, 32, 1)), train=False)


def test_unpadded_output_size_matches_the_paper():
  assert unet.output_size(572, 4) == 388  # Ronneberger et al. 2015, figure 1
  sizes = unet.valid_input_sizes(4, 560, 590)
  assert sizes == [572, 588]


@pytest.mark.parametrize('height, width', [(44, 44), (48, 48), (52, 60), (60, 48)])
def test_unpadded_network_output_equals_output_size(height, width):
  # 48 gives odd maps in the middle (bottleneck input 9, output 5).
  model = make_unet(padding='VALID', attention=True)
  logits = model(jnp.ones((1, height, width, 1)), train=False)
  assert logits.shape[1:3] == (model.output_size(height), model.output_size(width))
  assert model.output_size(48) == 8 and model.output_size(44) == 4


@pytest.mark.parametrize('side, nearest', [(61, '60 or 64'), (46, '44 or 48'), (8, '44')])
def test_unpadded_unet_rejects_sides_with_odd_pools_or_empty_maps(side, nearest):
  with pytest.raises(ValueError, match=f'input side {side}.*Nearest valid sides: {nearest} '):
    make_unet(padding='VALID')(jnp.zeros((1, side, 44, 1)), train=False)


def test_center_crop_takes_the_true_centre():
  x = np.arange(7 * 6).reshape(1, 7, 6, 1)
  np.testing.assert_array_equal(unet.center_crop(x, (3, 4))[0, :, :, 0], x[0, 2:5, 1:5, 0])
  # Odd difference: the extra row goes at the bottom.
  np.testing.assert_array_equal(unet.center_crop(x, 4)[0, :, :, 0], x[0, 1:5, 1:5, 0])
  with pytest.raises(ValueError, match='larger than the map'):
    unet.center_crop(x, (8, 2))


def test_unpadded_finest_skip_is_cropped_over_the_output_pixels():
  # With the up-convolutions zeroed, an output pixel sees only the finest skip:
  # 2 encoder + 2 decoder 3x3 convs, so a 9x9 input window centred on the
  # pixel's position (border + row, border + col) when the crop is centred.
  model = make_unet(padding='VALID', depth=2)
  for level in model.decoder:
    level.up.kernel[...] = jnp.zeros_like(level.up.kernel[...])
    level.up.bias[...] = jnp.zeros_like(level.up.bias[...])
  images = jax.random.normal(jax.random.key(1), (1, 60, 60, 1))
  border = (60 - model.output_size(60)) // 2
  grad = jax.grad(lambda x: model(x, train=False)[0, 3, 5, 0])(images)
  rows, cols = np.nonzero(np.asarray(grad)[0, :, :, 0])
  assert (rows.min(), rows.max()) == (border + 3 - 4, border + 3 + 4)
  assert (cols.min(), cols.max()) == (border + 5 - 4, border + 5 + 4)


def test_attention_gate_coefficients_are_in_unit_interval_at_skip_resolution():
  gate = attention.AttentionGate(4, 8, 2, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(0), (2, 8, 6, 4))
  g = 5 * jax.random.normal(jax.random.key(1), (2, 4, 3, 8))
  alpha = np.asarray(gate.coefficients(x, g))
  assert alpha.shape == (2, 8, 6, 1)
  assert alpha.min() >= 0 and alpha.max() <= 1 and alpha.std() > 0
  np.testing.assert_allclose(gate(x, g), np.asarray(x) * alpha, rtol=1e-6)
  with pytest.raises(ValueError, match='gating signal of height/width'):
    gate(x, g[:, :2])


def test_squeeze_excitation_scales_whole_channels():
  block = attention.SqueezeExcitation(8, reduction=16, rngs=nnx.Rngs(0))
  assert block.squeeze.out_features == 1  # C/r rounds to zero, kept at one unit
  x = 1.0 + jax.random.uniform(jax.random.key(0), (2, 5, 4, 8))
  scales = np.asarray(block.scales(x))
  assert scales.shape == (2, 8) and (scales > 0).all() and (scales < 1).all()
  ratio = np.asarray(block(x)) / np.asarray(x)
  np.testing.assert_allclose(ratio, np.broadcast_to(scales[:, None, None, :], ratio.shape),
                             rtol=1e-5)


def test_autoencoder_output_matches_input_without_skips():
  model = unet.UNetAutoencoder(1, depth=2, width=4, rngs=nnx.Rngs(0))
  images = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1))
  assert model(images, train=True).shape == images.shape
  assert model.decoder[-1].convs.conv1.conv.in_features == 4  # no skip concatenated
  np.testing.assert_array_equal(model.reconstruction_target(images), images)


def test_unpadded_autoencoder_target_is_the_centre_of_the_input():
  model = unet.UNetAutoencoder(3, depth=2, width=4, padding='VALID', skips=True,
                               rngs=nnx.Rngs(0))
  images = jax.random.uniform(jax.random.key(0), (1, 48, 44, 3))
  output = model(images, train=False)
  target = model.reconstruction_target(images)
  assert output.shape == target.shape == (1, 8, 4, 3)
  np.testing.assert_array_equal(target, images[:, 20:28, 20:24])


def test_no_normalisation_means_no_batch_statistics():
  model = make_unet(norm='none')
  assert not jax.tree.leaves(nnx.state(model, nnx.BatchStat))
  assert model.encoder.blocks[0].convs.conv1.conv.bias is not None
  assert model(jnp.ones((1, 16, 16, 1)), train=True).shape == (1, 16, 16, 1)


@pytest.mark.parametrize('option, message', [(dict(padding='valid'), 'padding'),
                                             (dict(norm='group'), 'normalisation'),
                                             (dict(depth=0), 'depth')])
def test_unknown_options_are_rejected(option, message):
  with pytest.raises(ValueError, match=message):
    make_unet(**option)


def test_encoder_dropout_needs_a_key_and_depends_on_it():
  model = make_unet(dropout=0.5)
  images = jax.random.normal(jax.random.key(0), (1, 16, 16, 1))
  with pytest.raises(ValueError, match='pass dropout_key'):
    model(images, train=True)
  run = lambda seed: np.asarray(model(images, train=True, dropout_key=jax.random.key(seed)))
  assert not np.array_equal(run(0), run(1))
  np.testing.assert_array_equal(model(images, train=False), model(images, train=False))


def test_encoder_returns_skips_from_fine_to_coarse():
  encoder = unet.UNetEncoder(1, depth=3, width=4, rngs=nnx.Rngs(0))
  bottleneck, skips = encoder(jnp.ones((2, 32, 32, 1)), train=False)
  assert encoder.block_names == ('enc1', 'enc2', 'enc3', 'bottleneck')
  assert [s.shape for s in skips] == [(2, 32, 32, 4), (2, 16, 16, 8), (2, 8, 8, 16)]
  assert bottleneck.shape == (2, 4, 4, 32)
