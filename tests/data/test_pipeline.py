import numpy as np

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
