"""grain pipelines over cached patch arrays: shuffle, augment, batch, shard.

Every random choice derives from (seed, epoch, index): an iterator's position
is just (epoch, batch), which is all a checkpoint needs to resume exactly.
Each process reads only its own slice of every global batch.
"""

import dataclasses
import functools

import grain
import numpy as np

from mammojax.data import augment


BALANCE_MODES = ('none', 'batches')


@dataclasses.dataclass(frozen=True)
class ArraySource:
  """Random access over in-memory arrays, one dict per example.

  ``masks`` (N, H, W, 1) uint8, when given, travels with each image so that
  geometric augmentations move the lesion mask with it.
  """
  images: np.ndarray
  labels: np.ndarray
  masks: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int) -> dict:
    example = {'image': self.images[index], 'label': self.labels[index],
               'weight': np.float32(1.0)}
    if self.masks is not None:
      example['mask'] = self.masks[index].astype(np.float32)
    return example


def balanced_order(labels: np.ndarray, *, seed: int, epoch: int,
                   global_batch_size: int) -> np.ndarray:
  """An epoch's example order in which every global batch is class-balanced.

  Each class is shuffled and oversampled (whole reshuffled passes, then a
  random remainder) to the size of the largest class; classes are then
  interleaved and shuffled inside each global batch, so a batch whose size
  is a multiple of the class count holds exactly as many of each class.
  """
  rng = np.random.default_rng(epoch_seed(seed, epoch, stream=2))
  classes = np.unique(labels)
  largest = max(int(np.sum(labels == c)) for c in classes)
  columns = []
  for label in classes:
    members = np.flatnonzero(labels == label)
    passes = [rng.permutation(members) for _ in range(-(-largest // len(members)))]
    columns.append(np.concatenate(passes)[:largest])
  order = np.stack(columns, axis=1).ravel()
  for start in range(0, len(order), global_batch_size):
    order[start:start + global_batch_size] = rng.permutation(
        order[start:start + global_batch_size])
  return order


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
  """A 32-bit seed for one (seed, epoch, stream) triple."""
  return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0])


def _epoch_examples(source: ArraySource, *, seed: int, epoch: int, balance: str,
                    global_batch_size: int) -> grain.MapDataset:
  if balance == 'batches':
    order = balanced_order(source.labels, seed=seed, epoch=epoch,
                           global_batch_size=global_batch_size)
    return grain.MapDataset.range(len(order)).map(lambda i: source[int(order[i])])
  if balance != 'none':
    raise ValueError(f'Unknown data.balance {balance!r}; valid choices: {BALANCE_MODES}.')
  return grain.MapDataset.source(source).shuffle(seed=epoch_seed(seed, epoch))


def train_batches(source: ArraySource, *, global_batch_size: int, seed: int, epoch: int,
                  augmentation: str, process_index: int = 0, process_count: int = 1,
                  start_batch: int = 0, balance: str = 'none') -> grain.MapDataset:
  """This process's batches of one training epoch (full global batches only).

  ``balance='batches'`` oversamples minority classes so that every batch is
  class-balanced (the epoch then has ``classes × largest class`` examples).
  Masks, when the source has them, are used by augmentation and then dropped:
  the classifier's step takes images, labels and weights.
  """
  if global_batch_size % process_count:
    raise ValueError(f'data.batch_size={global_batch_size} must be divisible by the '
                     f'number of processes ({process_count}).')
  dataset = _epoch_examples(source, seed=seed, epoch=epoch, balance=balance,
                            global_batch_size=global_batch_size)
  num_batches = len(dataset) // global_batch_size
  if num_batches == 0:
    raise ValueError(f'The training set has {len(source)} examples, fewer than '
                     f'data.batch_size={global_batch_size}; lower the batch size.')
  # Augment by global position (so each example's draws do not depend on the
  # process count), then give each process its contiguous share of every
  # global batch: global batch g holds the same examples, in the same order,
  # however many processes load it.
  dataset = dataset[:num_batches * global_batch_size].random_map(
      functools.partial(augment.augment_example, strategy=augmentation),
      seed=epoch_seed(seed, epoch, stream=1))
  dataset = process_share(dataset, global_batch_size, process_index, process_count)
  dataset = dataset.map(_without_mask)
  dataset = dataset.batch(global_batch_size // process_count, drop_remainder=True)
  return dataset[start_batch:]


def eval_batches(source: ArraySource, *, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> grain.MapDataset:
  """All examples in order, the last batch padded with weight-0 examples."""
  padded = -(-len(source) // global_batch_size) * global_batch_size
  dataset = grain.MapDataset.range(padded).map(functools.partial(_padded_example, source))
  dataset = process_share(dataset, global_batch_size, process_index, process_count)
  return dataset.map(_without_mask).batch(global_batch_size // process_count)


def process_share(dataset: grain.MapDataset, global_batch_size: int, process_index: int,
                  process_count: int) -> grain.MapDataset:
  """This process's contiguous slice of every global batch of ``dataset``.

  Process p reads elements [p·L, (p+1)·L) of each global batch (L = global
  batch / processes); stacked process by process, as
  ``jax.make_array_from_process_local_data`` does, the global batch is back in
  dataset order.
  """
  if global_batch_size % process_count:
    raise ValueError(f'The batch size {global_batch_size} must be divisible by the number of '
                     f'processes ({process_count}).')
  if process_count == 1:
    return dataset
  local = global_batch_size // process_count
  indices = [batch * global_batch_size + process_index * local + offset
             for batch in range(len(dataset) // global_batch_size) for offset in range(local)]
  return grain.MapDataset.range(len(indices)).map(lambda i: dataset[indices[i]])


def _without_mask(example: dict) -> dict:
  return {key: value for key, value in example.items() if key != 'mask'}


def _padded_example(source: ArraySource, index: int) -> dict:
  if index < len(source):
    return source[index]
  example = source[0]
  return {**example, 'image': np.zeros_like(example['image']), 'weight': np.float32(0.0)}
