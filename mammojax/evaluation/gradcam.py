"""Grad-CAM (Selvaraju et al. 2017) for the NNX classifiers, and its figure.

Where in the image did the network look? The gradient of one class logit
with respect to the last backbone feature map, averaged over space, weighs
each feature channel; the ReLU of the weighted sum, upsampled to the input,
is the heatmap.
"""

import functools
import os
import pathlib

from flax import nnx
import jax
import jax.numpy as jnp
from matplotlib import figure as mpl_figure
import numpy as np

PANEL_INCHES = 2.4
OVERLAY_ALPHA = 0.45


def _as_batch(images) -> jax.Array:
  """(N, H, W) or (N, H, W, C) → float32 (N, H, W, C)."""
  images = jnp.asarray(images, jnp.float32)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise ValueError(f'Grad-CAM takes a batch of images (N, H, W) or (N, H, W, C); got shape '
                     f'{images.shape}.')
  return images


def _class_indices(class_index, count: int, num_classes: int) -> jax.Array:
  """One class per image; -1 stands for 'the predicted class'."""
  if class_index is None:
    return jnp.full((count,), -1, jnp.int32)
  indices = np.asarray(class_index, np.int64)
  if indices.ndim > 1 or indices.size not in (1, count):
    raise ValueError(f'class_index {class_index}: give one class for all images or one per '
                     f'image ({count}).')
  indices = np.broadcast_to(indices.reshape(-1), (count,))
  if indices.min() < 0 or indices.max() >= num_classes:
    raise ValueError(f'class_index {class_index} out of range for a {num_classes}-class head; '
                     f'use 0..{num_classes - 1} (or None for the predicted class).')
  return jnp.asarray(indices, jnp.int32)


def _heatmaps(graphdef, params, batch_stats, images: jax.Array, indices: jax.Array):
  """Raw Grad-CAM maps resized to the input, before normalisation (traced once)."""
  model = nnx.merge(graphdef, params, batch_stats)
  features = model.backbone(model.scale_input(images), train=False)
  if features.ndim != 4 or features.shape[1] * features.shape[2] < 2:
    raise ValueError(f'Grad-CAM needs a spatial feature map; this backbone returns '
                     f'{features.shape} (a U-Net encoder backbone pools to 1×1).')
  features = features.astype(jnp.float32)
  logits = model.head(features, train=False)
  indices = jnp.where(indices < 0, jnp.argmax(logits, axis=-1), indices)

  def chosen_logits(feature_map):
    # Images are independent in inference mode, so the gradient of the sum is
    # each image's own gradient.
    all_logits = model.head(feature_map, train=False)
    return jnp.take_along_axis(all_logits, indices[:, None], axis=1).sum()

  gradients = jax.grad(chosen_logits)(features)
  weights = gradients.mean(axis=(1, 2), keepdims=True)  # one weight per channel
  cams = jax.nn.relu((weights * features).sum(axis=-1))
  return jax.image.resize(cams, (images.shape[0], *images.shape[1:3]), method='bilinear')


def grad_cam(graphdef, params, batch_stats, images, class_index=None) -> np.ndarray:
  """Grad-CAM heatmaps (N, H, W) in [0, 1], one per input image.

  ``graphdef, params, batch_stats`` as ``training.steps.split_model`` returns
  them (e.g. the best checkpoint's). ``images`` are what the model takes,
  (N, H, W) or (N, H, W, C). ``class_index``: None explains each image's
  predicted class; an int, or one int per image, a chosen class. Each map is
  scaled to [0, 1] by its own min and max; a map with no positive evidence
  is all zeros.
  """
  images = _as_batch(images)
  num_classes = nnx.merge(graphdef, params, batch_stats).head.logits.out_features
  indices = _class_indices(class_index, images.shape[0], num_classes)
  cams = jax.jit(functools.partial(_heatmaps, graphdef))(params, batch_stats, images, indices)
  cams = np.asarray(cams, np.float32)
  low = cams.min(axis=(1, 2), keepdims=True)
  spread = cams.max(axis=(1, 2), keepdims=True) - low
  return np.divide(cams - low, spread, out=np.zeros_like(cams), where=spread > 1e-12)


def _display(image) -> np.ndarray:
  image = np.asarray(image, np.float32)
  return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def save_gradcam_figure(images, heatmaps, path: str | os.PathLike,
                        titles: list[str] | None = None) -> dict:
  """One row per example: the image, and the image under its heatmap (jet).

  ``images``: (H, W) or (H, W, 1) arrays; ``heatmaps``: (H, W) in [0, 1] of
  the same size (``grad_cam``'s output); ``titles``: one per example (e.g.
  true/predicted class) or None. Returns {'panels': 2 × examples}.
  """
  images = [_display(image) for image in images]
  heatmaps = [np.asarray(heatmap, np.float32) for heatmap in heatmaps]
  titles = list(titles) if titles is not None else [''] * len(images)
  if not images or not len(images) == len(heatmaps) == len(titles):
    raise ValueError(f'Need as many images ({len(images)}), heatmaps ({len(heatmaps)}) and '
                     f'titles ({len(titles)}), at least one.')
  fig = mpl_figure.Figure(figsize=(PANEL_INCHES * 2, PANEL_INCHES * len(images)))
  axes = fig.subplots(len(images), 2, squeeze=False)
  for row, (image, heatmap, title) in enumerate(zip(images, heatmaps, titles)):
    if heatmap.shape != image.shape[:2]:
      raise ValueError(f'Example {row}: heatmap {heatmap.shape} does not match image '
                       f'{image.shape[:2]}; pass grad_cam of the same images.')
    axes[row, 0].imshow(image, cmap='gray')
    axes[row, 1].imshow(image, cmap='gray')
    axes[row, 1].imshow(heatmap, cmap='jet', alpha=OVERLAY_ALPHA, vmin=0.0, vmax=1.0)
    axes[row, 0].set_title(title, fontsize=8)
    axes[row, 1].set_title('Grad-CAM', fontsize=8)
    for axis in axes[row]:
      axis.set_xticks([])
      axis.set_yticks([])
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100, format='png')
  return {'panels': 2 * len(images)}
