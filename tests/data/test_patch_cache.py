"""Patch building from records: crops, masks, caching and every kind of bad input."""

import cv2
import numpy as np
import pytest

from mammojax.data import patch_cache, pipeline, preprocess

H, W = 60, 40


def write(path, array):
  assert cv2.imwrite(str(path), array)
  return str(path)


def lesion_image(bits=8):
  """A textured image with a bright disc at (x=20, y=30); its mask."""
  rng = np.random.default_rng(0)
  image = rng.uniform(0.2, 0.4, (H, W))
  mask = np.zeros((H, W), np.uint8)
  cv2.circle(mask, (20, 30), 6, 1, -1)
  image[mask > 0] = 0.9
  top = 255 if bits == 8 else 65535
  return (image * top).astype(np.uint8 if bits == 8 else np.uint16), mask * 255


def record(tmp_path, name, *, image=None, mask=None, rois=(), label=0):
  image_path = tmp_path / f'{name}.png'
  if image is not None:
    write(image_path, image)
  mask_paths = []
  if mask is not None:
    mask_paths = [write(tmp_path / f'{name}_mask.png', mask)]
  return {'id': name, 'image_id': name, 'image_path': str(image_path), 'class_name': 'benign',
          'label': label, 'patient_id': name, 'source': 'test', 'split': 'train',
          'mask_paths': mask_paths, 'rois': list(rois)}


def build(records, tmp_path, crop='roi', normalize='zscore', size=16, clahe=2.0):
  config = preprocess.PreprocessConfig(normalize=normalize, clahe_clip_limit=clahe)
  return patch_cache.load_or_build_patches(records, config, size=size, margin=1.2, crop=crop,
                                           cache_dir=tmp_path / 'cache', num_workers=2)


def reasons(patch_set):
  return {s['id']: s['reason'] for s in patch_set.skipped}


def test_roi_patch_and_its_mask_are_centred_on_the_lesion(tmp_path):
  image, mask = lesion_image()
  result = build([record(tmp_path, 'a', image=image, mask=mask)], tmp_path)
  assert result.images.shape == (1, 16, 16, 1) and result.masks.shape == (1, 16, 16, 1)
  assert result.masks[0, 8, 8, 0] == 1 and result.masks[0, 0, 0, 0] == 0
  assert result.images[0, 8, 8, 0] > result.images[0, 0, 0, 0]


def test_circle_roi_gives_the_same_patch_as_the_mask_file(tmp_path):
  image, mask = lesion_image()
  from_file = build([record(tmp_path, 'a', image=image, mask=mask)], tmp_path)
  circle = {'shape': 'circle', 'x': 20, 'y': 30, 'radius': 6}
  from_shape = build([record(tmp_path, 'b', image=image, rois=[circle])], tmp_path)
  np.testing.assert_allclose(from_file.images, from_shape.images, atol=1e-5)


def test_sixteen_bit_images_match_eight_bit_ones(tmp_path):
  (image8, mask), (image16, _) = lesion_image(8), lesion_image(16)
  records = [record(tmp_path, 'a8', image=image8, mask=mask),
             record(tmp_path, 'a16', image=image16, mask=mask)]
  plain = build(records, tmp_path, normalize='none', clahe=0)
  assert not plain.skipped
  np.testing.assert_allclose(plain.images[0], plain.images[1], atol=0.01)
  equalised = build(records, tmp_path, normalize='none')  # CLAHE bins differ by depth
  assert not equalised.skipped and 0 <= equalised.images.min() <= equalised.images.max() <= 1


def test_constant_image_gives_zeros_not_nan(tmp_path):
  _, mask = lesion_image()
  flat = np.full((H, W), 100, np.uint8)
  result = build([record(tmp_path, 'flat', image=flat, mask=mask)], tmp_path)
  assert np.isfinite(result.images).all() and not result.images.any()


def test_bad_files_are_skipped_with_their_reason(tmp_path):
  image, mask = lesion_image()
  good = record(tmp_path, 'good', image=image, mask=mask)
  missing = record(tmp_path, 'missing', mask=mask)
  truncated = record(tmp_path, 'truncated', image=image, mask=mask)
  data = (tmp_path / 'truncated.png').read_bytes()
  (tmp_path / 'truncated.png').write_bytes(data[:len(data) // 3])
  not_image = record(tmp_path, 'notes', mask=mask)
  (tmp_path / 'notes.png').write_text('patient notes, not an image')
  empty = record(tmp_path, 'empty', image=image, mask=np.zeros((H, W), np.uint8))
  other_size = record(tmp_path, 'other', image=image, mask=np.full((W, W), 255, np.uint8))
  result = build([good, missing, truncated, not_image, empty, other_size], tmp_path)
  assert [r['id'] for r in result.records] == ['good']
  why = reasons(result)
  assert 'not found' in why['missing'] and 'missing.png' in why['missing']
  assert 'truncated.png' in why['truncated'] and 'Cannot read' in why['truncated']
  assert 'Cannot read' in why['notes']
  assert 'empty' in why['empty']
  assert 'belongs to another image' in why['other']
  assert all(s['file'].endswith('.png') for s in result.skipped)


def test_mask_at_another_resolution_but_same_shape_is_resized(tmp_path):
  image, mask = lesion_image()
  half = cv2.resize(mask, (W // 2, H // 2), interpolation=cv2.INTER_NEAREST)
  result = build([record(tmp_path, 'half', image=image, mask=half)], tmp_path)
  assert not result.skipped and result.masks[0, 8, 8, 0] == 1


def test_whole_mode_and_roi_mode_without_a_lesion(tmp_path):
  image, _ = lesion_image()
  whole = record(tmp_path, 'whole', image=image)
  assert build([whole], tmp_path, crop='whole').images.shape == (1, 16, 16, 1)
  assert patch_cache.resolve_crop('auto', [whole]) == 'whole'
  skipped = build([whole], tmp_path, crop='roi')
  assert 'data.crop=whole' in reasons(skipped)['whole']


def test_second_build_reads_the_cache(tmp_path, monkeypatch):
  image, mask = lesion_image()
  records = [record(tmp_path, 'a', image=image, mask=mask)]
  first = build(records, tmp_path)
  monkeypatch.setattr(patch_cache, '_build', lambda *a, **k: pytest.fail('rebuilt'))
  again = build(records, tmp_path)
  np.testing.assert_array_equal(first.images, again.images)
  np.testing.assert_array_equal(first.masks, again.masks)


def test_no_nan_reaches_a_batch(tmp_path):
  image, mask = lesion_image()
  flat = np.zeros((H, W), np.uint8)
  result = build([record(tmp_path, f'r{i}', image=image if i % 2 else flat, mask=mask, label=i % 2)
                  for i in range(8)], tmp_path)
  source = pipeline.ArraySource(result.images, np.arange(8) % 2, result.masks)
  for batch in pipeline.train_batches(source, global_batch_size=4, seed=0, epoch=0,
                                      augmentation='flip_hv'):
    assert np.isfinite(batch['image']).all()


def test_a_region_mask_blanks_everything_outside_it(tmp_path):
  image, mask = lesion_image()
  region = np.zeros((H, W), np.uint8)
  region[:, :30] = 255  # the right quarter of the image is outside the region
  lesion = {**record(tmp_path, 'r', image=image, mask=mask),
            'region_mask_path': write(tmp_path / 'region.png', region)}
  whole = build([lesion], tmp_path, crop='whole', normalize='none', clahe=0, size=W)
  resized = whole.images[0, ..., 0]  # whole image squeezed to W×W: columns keep their place
  assert not resized[:, 31:].any() and resized[:, :29].all()
