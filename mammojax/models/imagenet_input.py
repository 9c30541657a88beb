"""The input scaling each ImageNet weight file was trained with.

Keras application weights expect RGB images in [0, 255] transformed by their
family's ``preprocess_input``: 'caffe' (BGR, minus the ImageNet channel
means), 'tf' (scaled to [-1, 1]) or 'torch' (to [0, 1], minus mean, over
std). Pretrained runs apply it on device after the medical preprocessing,
which must then leave images in [0, 1] (``data.preprocess.normalize='none'``).
"""

import jax
import jax.numpy as jnp

MODES = ('caffe', 'tf', 'torch', 'none')
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


def _per_channel(values, channels: int, dtype) -> jax.Array:
  """The constants for 3 channels, or their mean for a single (grayscale) one.

  In the images' dtype, so bfloat16 compute stays bfloat16 (config.dtype).
  """
  array = jnp.asarray(values, dtype)
  return array if channels == 3 else jnp.mean(array, keepdims=True)


def scale_input(images: jax.Array, mode: str, channels: int) -> jax.Array:
  """[0, 1] grayscale images (N, H, W, 1) → the weights' expected input.

  With ``channels == 3`` the gray image is repeated into R, G and B, which is
  exact; with 1 channel (first conv summed over RGB) the channel constants are
  averaged, exact for 'tf' and close for 'caffe'/'torch'.
  """
  if mode not in MODES:
    raise ValueError(f'Unknown input preprocessing {mode!r}; valid choices: {MODES}.')
  if channels == 3:
    images = jnp.repeat(images, 3, axis=-1)
  if mode == 'caffe':  # the gray image is the same in every channel: BGR = RGB
    return images * 255.0 - _per_channel(_CAFFE_MEAN_BGR, channels, images.dtype)
  if mode == 'tf':
    return images * 2.0 - 1.0
  if mode == 'torch':
    return (images - _per_channel(_TORCH_MEAN_RGB, channels, images.dtype)) / _per_channel(
        _TORCH_STD_RGB, channels, images.dtype)
  return images
