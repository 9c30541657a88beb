"""Random augmentations of one example, driven by a numpy Generator.

grain hands each example a Generator derived from (seed, index), so the same
seed and epoch always give the same augmented batch — resume is exact.
"""

import numpy as np

STRATEGIES = {
    'none': (),
    'flip_hv': ('flip_horizontal', 'flip_vertical'),
}


def check_strategy(name: str) -> None:
  if name not in STRATEGIES:
    raise ValueError(f'Unknown augmentation {name!r}; valid choices: {sorted(STRATEGIES)}. '
                     'Set --config.data.augmentation=NAME.')


def augment_example(example: dict, rng: np.random.Generator, *, strategy: str) -> dict:
  """Applies the strategy's operations to ``example['image']`` (H, W, C)."""
  image = example['image']
  operations = STRATEGIES[strategy]
  if 'flip_horizontal' in operations and rng.random() < 0.5:
    image = image[:, ::-1]
  if 'flip_vertical' in operations and rng.random() < 0.5:
    image = image[::-1]
  return {**example, 'image': np.ascontiguousarray(image)}
