"""Tests of Grad-CAM on the small CNN classifier and of its figure."""

import cv2
from flax import nnx
import jax
import numpy as np
import pytest

from mammojax import defaults, models
from mammojax.evaluation import gradcam
from mammojax.training import steps

SIZE = 32


def split_classifier(hidden_layers: int = 1, seed: int = 0):
  """(graphdef, params, batch_stats) of a 2-class small_cnn classifier."""
  config = defaults.base_config()
  config.model.head_hidden_layers = hidden_layers
  return steps.split_model(models.create_classifier(config.model, seed=seed))


def random_images(count: int = 3, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).random((count, SIZE, SIZE, 1)).astype(np.float32)


def linear_head(params: dict) -> dict:
  """Class 1's logit weights are minus class 0's: the two maps must differ."""
  params = jax.tree.map(np.array, params)
  kernel = params['head']['logits']['kernel']
  kernel[:, 1] = -kernel[:, 0]
  return params


def expected_cam(graphdef, params, batch_stats, images, class_index: int) -> np.ndarray:
  """Grad-CAM by hand for a head that is one linear layer on average-pooled features.

  The gradient of the logit w.r.t. each feature is kernel[:, c] / (h × w), so
  the map is ReLU(features · kernel[:, c]) up to a positive factor.
  """
  model = nnx.merge(graphdef, params, batch_stats)
  features = np.asarray(model.backbone(model.scale_input(images), train=False))
  cams = np.maximum(features @ np.asarray(params['head']['logits']['kernel'])[:, class_index], 0)
  cams = np.asarray(jax.image.resize(cams, (len(images), SIZE, SIZE), 'bilinear'))
  low = cams.min(axis=(1, 2), keepdims=True)
  spread = cams.max(axis=(1, 2), keepdims=True) - low
  return np.divide(cams - low, spread, out=np.zeros_like(cams), where=spread > 1e-12)


def test_heatmaps_have_the_input_size_and_lie_in_unit_range():
  graphdef, params, batch_stats = split_classifier()
  images = random_images()
  heatmaps = gradcam.grad_cam(graphdef, params, batch_stats, images[..., 0])  # (N, H, W) too
  assert heatmaps.shape == (3, SIZE, SIZE)
  assert heatmaps.dtype == np.float32
  assert np.isfinite(heatmaps).all()
  assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0


def test_matches_grad_cam_computed_by_hand():
  graphdef, params, batch_stats = split_classifier(hidden_layers=0)
  params = linear_head(params)
  images = random_images(4)
  for class_index in (0, 1):
    heatmaps = gradcam.grad_cam(graphdef, params, batch_stats, images, class_index=class_index)
    np.testing.assert_allclose(
        heatmaps, expected_cam(graphdef, params, batch_stats, images, class_index), atol=1e-4)


def test_class_index_selects_a_different_map():
  graphdef, params, batch_stats = split_classifier(hidden_layers=0)
  params = linear_head(params)
  images = random_images(4)
  first = gradcam.grad_cam(graphdef, params, batch_stats, images, class_index=0)
  second = gradcam.grad_cam(graphdef, params, batch_stats, images, class_index=1)
  assert np.abs(first - second).max() > 0.5
  # Opposite evidence: a map's peak lies where the other class has none of its own.
  varied = [i for i in range(4) if first[i].std() > 0 and second[i].std() > 0]
  assert varied, 'random inputs should give non-constant maps'
  for i in varied:
    peak = np.unravel_index(first[i].argmax(), first[i].shape)
    assert second[i][peak] < 0.5


def test_default_explains_the_predicted_class():
  graphdef, params, batch_stats = split_classifier()
  images = random_images(4, seed=1)
  logits, _ = steps.apply_model(graphdef, params, batch_stats, images, train=False)
  predicted = np.asarray(logits).argmax(axis=1)
  np.testing.assert_allclose(
      gradcam.grad_cam(graphdef, params, batch_stats, images),
      gradcam.grad_cam(graphdef, params, batch_stats, images, class_index=predicted), atol=1e-6)


def test_rejects_a_class_the_head_does_not_have():
  graphdef, params, batch_stats = split_classifier()
  with pytest.raises(ValueError, match='out of range for a 2-class head'):
    gradcam.grad_cam(graphdef, params, batch_stats, random_images(), class_index=2)
  with pytest.raises(ValueError, match='one per image'):
    gradcam.grad_cam(graphdef, params, batch_stats, random_images(3), class_index=[0, 1])
  with pytest.raises(ValueError, match=r'\(N, H, W\)'):
    gradcam.grad_cam(graphdef, params, batch_stats, np.zeros((SIZE, SIZE)))


def test_figure_has_image_and_overlay_per_example(tmp_path):
  images = random_images(2)
  heatmaps = np.stack([np.linspace(0, 1, SIZE * SIZE).reshape(SIZE, SIZE)] * 2)
  path = tmp_path / 'plots' / 'gradcam.png'
  result = gradcam.save_gradcam_figure(images, heatmaps, path, ['benign → benign', 'm → b'])
  assert result == {'panels': 4}
  saved = cv2.imread(str(path))
  assert saved is not None, f'{path} is not a readable PNG'
  height, width = saved.shape[:2]
  assert height / width == pytest.approx(1.0, rel=0.1)  # 2 rows × 2 columns


def test_figure_rejects_mismatched_inputs(tmp_path):
  images = random_images(2)
  with pytest.raises(ValueError, match=r'heatmap \(16, 16\) does not match image \(32, 32\)'):
    gradcam.save_gradcam_figure(images, np.zeros((2, 16, 16)), tmp_path / 'x.png')
  with pytest.raises(ValueError, match='titles \\(1\\)'):
    gradcam.save_gradcam_figure(images, np.zeros((2, SIZE, SIZE)), tmp_path / 'x.png', ['a'])
  assert not (tmp_path / 'x.png').exists()
