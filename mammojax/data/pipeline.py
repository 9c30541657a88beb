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


@dataclasses.dataclass(frozen=True)
class ArraySource:
  """Random access over in-memory arrays, one dict per example."""
  images: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int) -> dict:
    return {'image': self.images[index], 'label': self.labels[index],
            'weight': np.float32(1.0)}


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
  """A 32-bit seed for one (seed, epoch, stream) triple."""
  return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0])


def train_batches(source: ArraySource, *, global_batch_size: int, seed: int, epoch: int,
                  augmentation: str, process_index: int = 0, process_count: int = 1,
                  start_batch: int = 0) -> grain.MapDataset:
  """This process's batches of one training epoch (full global batches only)."""
  if global_batch_size % process_count:
    raise ValueError(f'data.batch_size={global_batch_size} must be divisible by the '
                     f'number of processes ({process_count}).')
  num_batches = len(source) // global_batch_size
  if num_batches == 0:
    raise ValueError(f'The training set has {len(source)} examples, fewer than '
                     f'data.batch_size={global_batch_size}; lower the batch size.')
  dataset = grain.MapDataset.source(source).shuffle(seed=epoch_seed(seed, epoch))
  # Keep whole global batches, then deal examples round-robin to processes:
  # global batch g is the same set of examples whatever the process count.
  dataset = dataset[:num_batches * global_batch_size][process_index::process_count]
  dataset = dataset.random_map(
      functools.partial(augment.augment_example, strategy=augmentation),
      seed=epoch_seed(seed, epoch, stream=1))
  dataset = dataset.batch(global_batch_size // process_count, drop_remainder=True)
  return dataset[start_batch:]


def eval_batches(source: ArraySource, *, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> grain.MapDataset:
  """All examples in order, the last batch padded with weight-0 examples."""
  padded = -(-len(source) // global_batch_size) * global_batch_size
  dataset = grain.MapDataset.range(padded).map(functools.partial(_padded_example, source))
  dataset = dataset[process_index::process_count]
  return dataset.batch(global_batch_size // process_count)


def _padded_example(source: ArraySource, index: int) -> dict:
  if index < len(source):
    return source[index]
  example = source[0]
  return {**example, 'image': np.zeros_like(example['image']), 'weight': np.float32(0.0)}
