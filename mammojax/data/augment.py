"""Random augmentations of one example (image and mask together), driven by a numpy Generator.

An example is a dict with 'image' float32 (H, W, C), C = 1 or 3, optional
'mask' (H, W, 1) binary float32, and pass-through keys ('label', 'weight').
Every operation is a small function ``(example, rng) -> example``:

- geometric operations (flips, rotation, zoom, crops) move the image AND the
  mask with the same parameters; the mask is resampled with nearest neighbour
  and a constant 0 border, so it stays binary;
- photometric operations (brightness, jitter, background recolouring) change
  the image only.

Images may be z-scored (negative values) or in [0, 1]; no operation assumes a
range unless its docstring says so. grain hands each example a Generator
derived from (seed, epoch, index), so the same seed and epoch always give the
same augmented batch — resume is exact.
"""

import cv2
import numpy as np

# Skin tones (RGB, 0-255) of the skin-lesion notes; the first means "leave as is".
SKIN_TONES = (
    (0, 0, 0), (141, 85, 36), (198, 134, 66), (224, 172, 105), (241, 194, 125),
    (255, 219, 172), (143, 91, 72), (128, 81, 64), (114, 72, 55), (99, 62, 47),
    (84, 53, 38), (255, 224, 189), (255, 205, 148), (234, 192, 134), (255, 173, 96),
    (255, 227, 159), (244, 204, 199), (247, 213, 208), (255, 230, 226),
)


# ---------------------------------------------------------------- geometry, fixed parameters


def _replace(example: dict, image: np.ndarray, mask: np.ndarray | None) -> dict:
  """A new example with ``image`` (and ``mask`` when the example has one)."""
  out = {**example, 'image': image}
  if mask is not None:
    out['mask'] = mask
  return out


def _apply_cv2(function, array: np.ndarray) -> np.ndarray:
  """``function(array)`` keeping the array's shape: cv2 drops a trailing axis of size 1."""
  return function(np.ascontiguousarray(array)).reshape(array.shape)


def _mask_of(example: dict) -> np.ndarray | None:
  return example.get('mask')


def warp_example(example: dict, matrix: np.ndarray) -> dict:
  """Applies a 2x3 affine ``matrix`` (cv2 convention) to the image and the mask.

  The image is resampled bilinearly with a reflected border (as Keras
  ``fill_mode='reflect'``, so no black corners); the mask with nearest
  neighbour and a 0 border, so it stays binary and gains no lesion pixels.
  """
  height, width = example['image'].shape[:2]
  image = _apply_cv2(lambda a: cv2.warpAffine(a, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_REFLECT), example['image'])
  mask = _mask_of(example)
  if mask is not None:
    mask = _apply_cv2(lambda a: cv2.warpAffine(a, matrix, (width, height),
                                               flags=cv2.INTER_NEAREST,
                                               borderMode=cv2.BORDER_CONSTANT, borderValue=0),
                      mask)
  return _replace(example, image, mask)


def _centre(example: dict) -> tuple[float, float]:
  height, width = example['image'].shape[:2]
  # Pixel centres run 0..W-1: this centre makes a 90-degree turn of a square exact.
  return ((width - 1) / 2, (height - 1) / 2)


def rotate_example(example: dict, degrees: float) -> dict:
  """Rotates image and mask ``degrees`` counter-clockwise about the image centre."""
  return warp_example(example, cv2.getRotationMatrix2D(_centre(example), float(degrees), 1.0))


def zoom_example(example: dict, scale: float) -> dict:
  """Scales the content about the centre: ``scale`` > 1 zooms in, < 1 zooms out."""
  return warp_example(example, cv2.getRotationMatrix2D(_centre(example), 0.0, float(scale)))


def _resize(array: np.ndarray, shape: tuple, interpolation: int) -> np.ndarray:
  """``array`` resized to ``shape`` (H, W, ...) with cv2 (which drops a trailing axis of 1)."""
  size = (shape[1], shape[0])  # cv2 sizes are (width, height)
  return cv2.resize(np.ascontiguousarray(array), size, interpolation=interpolation).reshape(shape)


def crop_example(example: dict, top: int, left: int, height: int, width: int) -> dict:
  """Crops the window (clipped to the image) from image and mask, resized back to (H, W)."""
  full_height, full_width = example['image'].shape[:2]
  top = min(max(0, int(top)), full_height - 1)
  left = min(max(0, int(left)), full_width - 1)
  bottom = min(full_height, top + max(1, int(height)))
  right = min(full_width, left + max(1, int(width)))
  image = _resize(example['image'][top:bottom, left:right], example['image'].shape,
                  cv2.INTER_LINEAR)
  mask = _mask_of(example)
  if mask is not None:
    mask = _resize(mask[top:bottom, left:right], mask.shape, cv2.INTER_NEAREST)
  return _replace(example, image, mask)


def mask_box(mask: np.ndarray, border: int | tuple[int, int] = 0) -> tuple[int, int, int, int]:
  """(top, left, height, width) of the mask's foreground grown by ``border`` (y, x) pixels.

  The box is clipped to the image, like the notes' CropByMask. ValueError when
  the mask is empty.
  """
  border_y, border_x = (border, border) if isinstance(border, int) else border
  rows, cols = np.nonzero(mask.reshape(mask.shape[:2]) > 0.5)
  if rows.size == 0:
    raise ValueError('mask_box needs a mask with at least one foreground pixel.')
  top, left = max(0, rows.min() - border_y), max(0, cols.min() - border_x)
  bottom = min(mask.shape[0], rows.max() + 1 + border_y)
  right = min(mask.shape[1], cols.max() + 1 + border_x)
  return int(top), int(left), int(bottom - top), int(right - left)


# ---------------------------------------------------------------- random geometric operations


def flip_horizontal(example: dict, rng: np.random.Generator, *, p: float = 0.5) -> dict:
  """Mirrors image and mask left-right with probability ``p`` (one draw)."""
  if rng.random() < p:
    mask = _mask_of(example)
    return _replace(example, example['image'][:, ::-1], None if mask is None else mask[:, ::-1])
  return example


def flip_vertical(example: dict, rng: np.random.Generator, *, p: float = 0.5) -> dict:
  """Mirrors image and mask top-bottom with probability ``p`` (one draw)."""
  if rng.random() < p:
    mask = _mask_of(example)
    return _replace(example, example['image'][::-1], None if mask is None else mask[::-1])
  return example


def rotation(example: dict, rng: np.random.Generator, *, max_degrees: float = 20.0) -> dict:
  """Rotates by an angle uniform in [-max_degrees, max_degrees]."""
  return rotate_example(example, rng.uniform(-max_degrees, max_degrees))


def zoom(example: dict, rng: np.random.Generator, *, zoom_range: float = 0.1) -> dict:
  """Zooms by a scale uniform in [1 - zoom_range, 1 + zoom_range] (Keras zoom_range=0.1)."""
  return zoom_example(example, rng.uniform(1.0 - zoom_range, 1.0 + zoom_range))


def random_crop(example: dict, rng: np.random.Generator, *, min_scale: float = 0.8) -> dict:
  """Crops a random window with sides ``s`` x (H, W), s uniform in [min_scale, 1], resized back."""
  full_height, full_width = example['image'].shape[:2]
  scale = rng.uniform(min_scale, 1.0)
  height = max(1, round(scale * full_height))
  width = max(1, round(scale * full_width))
  top = int(rng.integers(0, full_height - height + 1))
  left = int(rng.integers(0, full_width - width + 1))
  return crop_example(example, top, left, height, width)


def centre_crop(example: dict, rng: np.random.Generator, *, scale: float = 0.8) -> dict:
  """Crops the central window with sides ``scale`` x (H, W), resized back (``rng`` unused)."""
  del rng  # deterministic; the (example, rng) signature is shared by every operation
  full_height, full_width = example['image'].shape[:2]
  height = max(1, round(scale * full_height))
  width = max(1, round(scale * full_width))
  return crop_example(example, (full_height - height) // 2, (full_width - width) // 2, height,
                      width)


def crop_by_mask(example: dict, rng: np.random.Generator, *,
                 border: int | tuple[int, int] = 10) -> dict:
  """Crops the mask's bounding box plus ``border`` pixels (int or (y, x)), resized back.

  Unchanged when the example has no mask or an empty one (``rng`` unused).
  """
  del rng
  mask = _mask_of(example)
  if mask is None or not np.any(mask > 0.5):
    return example
  return crop_example(example, *mask_box(mask, border))


# ---------------------------------------------------------------- photometric operations


def brightness(example: dict, rng: np.random.Generator, *, low: float = 0.5,
               high: float = 0.7) -> dict:
  """Darkens by a factor uniform in [low, high] (Keras brightness_range=[0.5, 0.7]).

  Keras multiplies 0-255 pixel values, i.e. scales every pixel's distance to
  black (0). A z-scored image has no fixed black, so black is taken as the
  image's own minimum: ``min + factor * (image - min)``. This equals Keras on
  images whose minimum is 0, works for any range and cannot divide by zero.
  """
  image = example['image']
  darkest = image.min()
  factor = np.float32(rng.uniform(low, high))
  return {**example, 'image': darkest + factor * (image - darkest)}


def jitter(example: dict, rng: np.random.Generator, *, strength: float = 0.1) -> dict:
  """Small random brightness shift and contrast change, plus per-channel gains on RGB.

  Draws, in order: shift in ±strength of the image's range (max - min),
  contrast factor 1 ± strength about the mean, and for C == 3 three channel
  gains 1 ± strength about the image minimum (a colour cast).
  """
  image = example['image']
  darkest, span = image.min(), image.max() - image.min()
  shift = np.float32(rng.uniform(-strength, strength)) * span
  contrast = np.float32(1.0 + rng.uniform(-strength, strength))
  mean = image.mean(dtype=np.float32)
  image = (image - mean) * contrast + mean + shift
  if image.shape[-1] == 3:
    gains = (1.0 + rng.uniform(-strength, strength, size=3)).astype(np.float32)
    image = darkest + (image - darkest) * gains
  return {**example, 'image': image}


def _tone_value(tone: tuple[int, int, int], image: np.ndarray) -> np.ndarray:
  """The tone in the image's units and channels.

  [0, 1] images get tone / 255, [0, 255] images the tone itself, any other
  range (z-scored) maps 0..255 onto the image's own [min, max]. Gray images
  get the tone's luminance (cv2's RGB→gray weights).
  """
  rgb = np.asarray(tone, np.float32).reshape(1, 1, 3)
  value = rgb if image.shape[-1] == 3 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).reshape(1)
  value = value.reshape(-1)
  low, high = float(image.min()), float(image.max())
  if low >= 0.0 and high <= 1.0:
    return value / 255.0
  if low >= 0.0 and high <= 255.0:
    return value
  return low + value / 255.0 * (high - low)


def background_recolour(example: dict, rng: np.random.Generator, *,
                        tones: tuple = SKIN_TONES) -> dict:
  """Paints pixels outside the mask with a random skin tone (``tones[0]`` = leave as is).

  Unchanged (and no draw) without a mask. Needs the mask aligned with the
  image, so place it after the geometric operations.
  """
  mask = _mask_of(example)
  if mask is None:
    return example
  tone = tones[int(rng.integers(len(tones)))]
  if tone == tones[0]:
    return example
  image = np.array(example['image'], dtype=np.float32)  # a copy: the input may be shared
  outside = mask.reshape(mask.shape[:2]) < 0.5
  image[outside] = _tone_value(tone, image)
  return {**example, 'image': image}


# ---------------------------------------------------------------- strategies


def _rotation_any(example: dict, rng: np.random.Generator) -> dict:
  """Any orientation: dermoscopy has no up (the skin-lesion notes rotate by up to 180°)."""
  return rotation(example, rng, max_degrees=180.0)


OPERATIONS = {
    'flip_horizontal': flip_horizontal,
    'flip_vertical': flip_vertical,
    'rotation': rotation,
    'zoom': zoom,
    'brightness': brightness,
    'jitter': jitter,
    'random_crop': random_crop,
    'centre_crop': centre_crop,
    'crop_by_mask': crop_by_mask,
    'background_recolour': background_recolour,
}

# Name -> operations applied in order; the first four are the notes' grid.
STRATEGIES = {
    'none': (),
    'flip_hv': (flip_horizontal, flip_vertical),
    'brightness': (brightness,),
    'flip_brightness': (flip_horizontal, flip_vertical, brightness),
    'rotation': (rotation,),
    'zoom': (zoom,),
    'jitter': (jitter,),
    'flip_rotate_zoom': (flip_horizontal, flip_vertical, rotation, zoom),
    'random_crop': (random_crop,),
    'centre_crop': (centre_crop,),
    'crop_by_mask': (crop_by_mask,),
    'skin': (crop_by_mask, _rotation_any, flip_horizontal, flip_vertical, background_recolour),
}


def check_strategy(name: str) -> None:
  """ValueError naming ``data.augmentation`` and the valid choices for an unknown name."""
  if name not in STRATEGIES:
    raise ValueError(f'Unknown augmentation {name!r} in data.augmentation; valid choices: '
                     f'{sorted(STRATEGIES)}. Set --config.data.augmentation=NAME.')


def _check_example(example: dict) -> None:
  image = example.get('image')
  if image is None or np.ndim(image) != 3:
    raise ValueError(f'augment_example needs example["image"] shaped (H, W, C); got '
                     f'{None if image is None else np.shape(image)}.')
  mask = example.get('mask')
  if mask is not None and np.shape(mask)[:2] != np.shape(image)[:2]:
    raise ValueError(f'example["mask"] shape {np.shape(mask)} does not match the image '
                     f'{np.shape(image)}; masks must be (H, W, 1) like the image.')


def augment_example(example: dict, rng: np.random.Generator, *, strategy: str) -> dict:
  """Applies the strategy's operations in order; float32, same shapes, deterministic in rng."""
  check_strategy(strategy)
  _check_example(example)
  for operation in STRATEGIES[strategy]:
    example = operation(example, rng)
  out = {**example, 'image': np.ascontiguousarray(example['image'], dtype=np.float32)}
  if 'mask' in example:
    out['mask'] = np.ascontiguousarray(example['mask'], dtype=np.float32)
  return out


# ---------------------------------------------------------------- test-time augmentation


def tta_views(image: np.ndarray) -> list[np.ndarray]:
  """Identity, horizontal flip, vertical flip and both, of (..., H, W, C) images.

  The flips act on the last three axes, so a batch (N, H, W, C) works too.
  """
  image = np.asarray(image)
  if image.ndim < 3:
    raise ValueError(f'tta_views needs images shaped (..., H, W, C); got {image.shape}.')
  flipped_h = np.flip(image, axis=-2)
  return [image, flipped_h, np.flip(image, axis=-3), np.flip(flipped_h, axis=-3)]


def tta_average(probs_per_view) -> np.ndarray:
  """Mean class probabilities over views: a list of equally shaped arrays, one per view."""
  views = [np.asarray(p, np.float64) for p in probs_per_view]
  if not views:
    raise ValueError('tta_average needs the probabilities of at least one view.')
  shapes = {v.shape for v in views}
  if len(shapes) != 1:
    raise ValueError(f'tta_average needs one shape for every view; got {sorted(shapes)}.')
  return np.mean(views, axis=0)

