import numpy as np
import pytest

from mammojax.data import pipeline


def make_source(n=20):
  images = np.arange(n * 16, dtype=np.float32).reshape(n, 4, 4, 1)
  return pipeline.ArraySource(images, np.arange(n, dtype=np.int32))


def labels_of(batches):
  return [b['label'].tolist() for b in batches]


def test_same_seed_and_epoch_give_same_batches_other_epoch_differs():
  source = make_source()
  kwargs = dict(global_batch_size=4, seed=0, augmentation='flip_hv')
  first = list(pipeline.train_batches(source, epoch=0, **kwargs))
  again = list(pipeline.train_batches(source, epoch=0, **kwargs))
  assert labels_of(first) == labels_of(again)
  assert all(np.array_equal(a['image'], b['image']) for a, b in zip(first, again))
  assert labels_of(first) != labels_of(list(pipeline.train_batches(source, epoch=1, **kwargs)))


def test_every_epoch_sees_each_example_at_most_once_in_full_batches():
  batches = list(pipeline.train_batches(make_source(22), global_batch_size=4, seed=1, epoch=0,
                                        augmentation='none'))
  seen = sum(labels_of(batches), [])
  assert len(batches) == 5 and len(set(seen)) == 20


def test_processes_split_each_global_batch():
  source = make_source()
  kwargs = dict(global_batch_size=4, seed=0, epoch=2, augmentation='none')
  whole = labels_of(pipeline.train_batches(source, **kwargs))
  halves = [labels_of(pipeline.train_batches(source, process_index=p, process_count=2,
                                             **kwargs)) for p in range(2)]
  for index, batch in enumerate(whole):
    assert sorted(halves[0][index] + halves[1][index]) == sorted(batch)


def test_start_batch_resumes_mid_epoch():
  source = make_source()
  kwargs = dict(global_batch_size=4, seed=0, epoch=0, augmentation='flip_hv')
  full = list(pipeline.train_batches(source, **kwargs))
  tail = list(pipeline.train_batches(source, start_batch=3, **kwargs))
  assert labels_of(tail) == labels_of(full[3:])
  assert np.array_equal(tail[0]['image'], full[3]['image'])


def test_flips_only_reorder_pixels():
  source = make_source(8)
  for batch in pipeline.train_batches(source, global_batch_size=4, seed=0, epoch=0,
                                      augmentation='flip_hv'):
    for image, label in zip(batch['image'], batch['label']):
      assert sorted(image.ravel()) == sorted(source.images[label].ravel())


def test_eval_batches_pad_with_zero_weights():
  batches = list(pipeline.eval_batches(make_source(10), global_batch_size=4))
  assert len(batches) == 3
  assert batches[-1]['weight'].tolist() == [1, 1, 0, 0]
  assert sum(labels_of(batches), [])[:10] == list(range(10))


def test_balanced_batches_hold_each_class_equally():
  labels = np.array([0] * 30 + [1] * 6, np.int32)
  source = pipeline.ArraySource(np.zeros((36, 4, 4, 1), np.float32), labels)
  batches = list(pipeline.train_batches(source, global_batch_size=8, seed=0, epoch=0,
                                        augmentation='none', balance='batches'))
  assert len(batches) == 60 // 8  # minority oversampled to 30: 60 examples per epoch
  for batch in batches:
    assert np.bincount(batch['label'], minlength=2).tolist() == [4, 4]


def test_balanced_order_covers_every_minority_example_and_is_seeded():
  labels = np.array([0] * 20 + [1] * 7, np.int32)
  order = pipeline.balanced_order(labels, seed=1, epoch=0, global_batch_size=4)
  assert set(order[labels[order] == 1]) == set(range(20, 27))
  assert set(order[labels[order] == 0]) == set(range(20))
  again = pipeline.balanced_order(labels, seed=1, epoch=0, global_batch_size=4)
  other = pipeline.balanced_order(labels, seed=1, epoch=1, global_batch_size=4)
  assert np.array_equal(order, again) and not np.array_equal(order, other)


def test_masks_travel_with_images_then_leave_the_batch():
  images = np.zeros((8, 6, 6, 1), np.float32)
  images[:, :, :3] = 1.0  # left half bright
  masks = (images > 0).astype(np.uint8)  # the mask marks the bright half
  source = pipeline.ArraySource(images, np.zeros(8, np.int32), masks)
  assert source[0]['mask'].shape == (6, 6, 1)
  batches = list(pipeline.train_batches(source, global_batch_size=4, seed=0, epoch=0,
                                        augmentation='flip_hv'))
  assert all(set(batch) == {'image', 'label', 'weight'} for batch in batches)


def test_unknown_balance_mode_lists_choices():
  with pytest.raises(ValueError, match='data.balance'):
    pipeline.train_batches(make_source(), global_batch_size=4, seed=0, epoch=0,
                           augmentation='none', balance='oversample')


def test_processes_stack_back_into_the_single_process_batch_exactly():
  source = make_source(24)
  kwargs = dict(global_batch_size=8, seed=3, epoch=1, augmentation='flip_hv')
  whole = list(pipeline.train_batches(source, **kwargs))
  parts = [list(pipeline.train_batches(source, process_index=p, process_count=2, **kwargs))
           for p in range(2)]
  for index, batch in enumerate(whole):  # same examples, order and augmentation
    for key in ('image', 'label'):
      stacked = np.concatenate([parts[0][index][key], parts[1][index][key]])
      np.testing.assert_array_equal(stacked, batch[key])
  evals = [list(pipeline.eval_batches(source, global_batch_size=8, process_index=p,
                                      process_count=2)) for p in range(2)]
  order = np.concatenate([np.concatenate([evals[0][b]['label'], evals[1][b]['label']])
                          for b in range(3)])
  assert order.tolist() == list(range(24))
