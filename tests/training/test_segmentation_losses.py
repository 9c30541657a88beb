import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mammojax.training.segmentation_losses import SEGMENTATION_LOSSES, segmentation_loss

# One 2x2 image with a single foreground pixel; logits 0 mean p = 0.5 everywhere.
TARGET = jnp.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])
ZERO_LOGITS = jnp.zeros_like(TARGET)
ONE = jnp.ones((1,))


def _random_batch(seed, n=3, height=12, width=16):
  rng = np.random.default_rng(seed)
  logits = jnp.asarray(rng.normal(0, 3, (n, height, width, 1)), jnp.float32)
  targets = jnp.asarray(rng.random((n, height, width, 1)) < 0.3, jnp.float32)
  return logits, targets


def test_bce_of_zero_logits_is_log_two():
  loss = segmentation_loss(ZERO_LOGITS, TARGET, ONE, name='bce')
  assert float(loss) == pytest.approx(math.log(2), rel=1e-6)


def test_dice_hand_computed_with_and_without_smoothing():
  # sum(p*t) = 0.5, sum(p) = 2, sum(t) = 1.
  loss = segmentation_loss(ZERO_LOGITS, TARGET, ONE, name='dice', smooth=1.0)
  assert float(loss) == pytest.approx(1 - (2 * 0.5 + 1) / (3 + 1), rel=1e-6)
  loss = segmentation_loss(ZERO_LOGITS, TARGET, ONE, name='dice', smooth=0.0)
  assert float(loss) == pytest.approx(1 - 1 / 3, rel=1e-6)


def test_bce_dice_is_the_sum():
  loss = segmentation_loss(ZERO_LOGITS, TARGET, ONE, name='bce_dice')
  assert float(loss) == pytest.approx(math.log(2) + 0.5, rel=1e-6)


def test_focal_scales_bce_by_one_minus_pt_squared():
  loss = segmentation_loss(ZERO_LOGITS, TARGET, ONE, name='focal')
  assert float(loss) == pytest.approx(0.25 * math.log(2), rel=1e-5)


def test_tversky_hand_computed_and_equal_to_dice_at_one_half():
  # TP = 0.5, FN = 0.5, FP = 1.5; alpha weighs FN, beta FP.
  loss = segmentation_loss(ZERO_LOGITS, TARGET, ONE, name='tversky', smooth=0.0)
  assert float(loss) == pytest.approx(1 - 0.5 / (0.5 + 0.7 * 0.5 + 0.3 * 1.5), rel=1e-6)
  logits, targets = _random_batch(0)
  weights = jnp.ones((3,))
  tversky = segmentation_loss(logits, targets, weights, name='tversky', smooth=0.0,
                              tversky_alpha=0.5, tversky_beta=0.5)
  dice = segmentation_loss(logits, targets, weights, name='dice', smooth=0.0)
  assert float(tversky) == pytest.approx(float(dice), rel=1e-5)


def test_perfect_prediction_gives_zero_dice_loss_including_empty_masks():
  _, targets = _random_batch(1)
  targets = targets.at[1].set(0.0)  # an image without lesion
  logits = (2 * targets - 1) * 30.0
  loss = segmentation_loss(logits, targets, jnp.ones((3,)), name='dice')
  assert float(loss) == pytest.approx(0.0, abs=1e-6)
  wrong = segmentation_loss(-logits, targets, jnp.ones((3,)), name='dice')
  assert float(wrong) > 0.5


@pytest.mark.parametrize('name', SEGMENTATION_LOSSES)
def test_gradient_is_finite_even_for_extreme_logits(name):
  logits, targets = _random_batch(2)
  logits = logits.at[0, :4].set(100.0).at[0, 4:8].set(-100.0)
  grads = jax.grad(segmentation_loss)(logits, targets, jnp.ones((3,)), name=name)
  assert grads.shape == logits.shape
  assert bool(jnp.all(jnp.isfinite(grads)))
  assert float(jnp.abs(grads).sum()) > 0


@pytest.mark.parametrize('name', SEGMENTATION_LOSSES)
def test_padding_examples_do_not_change_the_loss(name):
  logits, targets = _random_batch(3, n=2)
  padded_logits = jnp.concatenate([logits, jnp.full_like(logits[:1], 7.0)])
  padded_targets = jnp.concatenate([targets, jnp.zeros_like(targets[:1])])
  plain = segmentation_loss(logits, targets, jnp.ones((2,)), name=name)
  padded = segmentation_loss(padded_logits, padded_targets, jnp.array([1.0, 1.0, 0.0]), name=name)
  assert float(padded) == pytest.approx(float(plain), rel=1e-6)


def test_loss_is_weighted_mean_of_per_image_losses():
  logits, targets = _random_batch(4, n=2)
  first = segmentation_loss(logits[:1], targets[:1], ONE, name='bce_dice')
  second = segmentation_loss(logits[1:], targets[1:], ONE, name='bce_dice')
  both = segmentation_loss(logits, targets, jnp.array([1.0, 3.0]), name='bce_dice')
  assert float(both) == pytest.approx((float(first) + 3 * float(second)) / 4, rel=1e-5)


def test_jit_gives_the_same_value():
  logits, targets = _random_batch(5)
  weights = jnp.ones((3,))
  jitted = jax.jit(functools.partial(segmentation_loss, name='tversky'))
  eager = segmentation_loss(logits, targets, weights, name='tversky')
  assert float(jitted(logits, targets, weights)) == pytest.approx(float(eager), rel=1e-6)


def test_unknown_name_lists_choices_and_config_field():
  with pytest.raises(ValueError, match=r"train\.loss.*'bce'.*'tversky'"):
    segmentation_loss(ZERO_LOGITS, TARGET, ONE, name='lovasz')


def test_shape_mismatch_is_a_clear_error():
  with pytest.raises(ValueError, match='targets'):
    segmentation_loss(ZERO_LOGITS, TARGET[..., 0], ONE, name='bce')
  with pytest.raises(ValueError, match='one per example'):
    segmentation_loss(ZERO_LOGITS, TARGET, jnp.ones((2,)), name='bce')
