"""Masked full images and the foreground-aware window sampler."""

import numpy as np

from mammojax.data import segmentation_data


def masked_images(count=4, size=(40, 30)):
  images, masks = [], []
  for index in range(count):
    image = np.zeros(size, np.float32)
    mask = np.zeros(size, np.uint8)
    mask[30:34, 2 + index:6 + index] = 1  # a small lesion near the bottom-left
    image[mask > 0] = 1.0
    images.append(image)
    masks.append(mask)
  records = [{'id': f'i{i}'} for i in range(count)]
  return segmentation_data.MaskedImages(images, masks, records, [])


def test_image_records_merge_the_lesions_of_one_image():
  lesion = {'image_path': '/a.png', 'image_id': 'a', 'mask_paths': ['/m1.png'], 'rois': []}
  merged = segmentation_data.image_records([
      {**lesion, 'id': 'a_1'}, {**lesion, 'id': 'a_2', 'mask_paths': ['/m2.png']},
      {**lesion, 'id': 'b_1', 'image_path': '/b.png', 'image_id': 'b', 'mask_paths': [],
       'rois': [{'shape': 'circle', 'x': 1, 'y': 1, 'radius': 1}]}])
  assert [m['id'] for m in merged] == ['a', 'b']
  assert merged[0]['mask_paths'] == ['/m1.png', '/m2.png']
  assert merged[0]['lesion_ids'] == ['a_1', 'a_2'] and len(merged[1]['rois']) == 1


def test_foreground_windows_contain_the_lesion_and_uniform_ones_stay_inside():
  masked = masked_images()
  rng = np.random.default_rng(0)
  for index in range(20):
    window = segmentation_data.sample_window(masked, index, rng, window=16,
                                             foreground_fraction=1.0)
    assert window['image'].shape == (16, 16, 1) and window['mask'].any()
  uniform = [segmentation_data.sample_window(masked, i, rng, window=16, foreground_fraction=0.0)
             for i in range(200)]
  with_lesion = np.mean([w['mask'].any() for w in uniform])
  assert 0 < with_lesion < 0.6  # a uniform window finds the small lesion only sometimes


def test_window_batches_are_seeded_and_shaped():
  masked = masked_images()
  kwargs = dict(window=16, windows_per_image=4, foreground_fraction=0.5, augmentation='flip_hv',
                global_batch_size=4, seed=0)
  first = list(segmentation_data.window_batches(masked, epoch=0, **kwargs))
  again = list(segmentation_data.window_batches(masked, epoch=0, **kwargs))
  other = list(segmentation_data.window_batches(masked, epoch=1, **kwargs))
  assert len(first) == 4 and first[0]['image'].shape == (4, 16, 16, 1)
  assert set(first[0]) == {'image', 'mask', 'weight'}
  assert all(np.array_equal(a['image'], b['image']) for a, b in zip(first, again))
  assert not all(np.array_equal(a['image'], b['image']) for a, b in zip(first, other))
  for batch in first:  # flips move image and mask together
    np.testing.assert_array_equal(batch['image'] > 0.5, batch['mask'] > 0.5)
