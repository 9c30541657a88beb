"""Test-time augmentation: probabilities averaged over the four flipped views."""

import jax.numpy as jnp
import numpy as np

from mammojax.data import pipeline
from mammojax.training import loop, parallel


def left_half_model(params, batch_stats, batch):
  """A 'classifier' that only looks at the left half: orientation-dependent."""
  del params, batch_stats
  left = jnp.mean(batch['image'][:, :, :2], axis=(1, 2, 3))
  p = jnp.clip(left, 0.0, 1.0)
  return jnp.stack([1 - p, p], axis=-1)


def test_tta_makes_predictions_invariant_to_flips():
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(5, 4, 4, 1)).astype(np.float32)
  source = pipeline.ArraySource(images, np.zeros(5, np.int32))
  flipped = pipeline.ArraySource(images[:, :, ::-1].copy(), np.zeros(5, np.int32))
  mesh = parallel.create_mesh()
  kwargs = dict(batch_size=4, mesh=mesh)
  plain = loop.predict_with_tta(left_half_model, None, None, source, tta=False, **kwargs)
  plain_flipped = loop.predict_with_tta(left_half_model, None, None, flipped, tta=False, **kwargs)
  assert not np.allclose(plain, plain_flipped)
  averaged = loop.predict_with_tta(left_half_model, None, None, source, tta=True, **kwargs)
  averaged_flipped = loop.predict_with_tta(left_half_model, None, None, flipped, tta=True,
                                           **kwargs)
  np.testing.assert_allclose(averaged, averaged_flipped, atol=1e-6)
  np.testing.assert_allclose(averaged[:, 1], images.mean(axis=(1, 2, 3)), atol=1e-6)
