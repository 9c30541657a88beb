"""Declarative freezing: a label per parameter, optax partitions per phase.

Every parameter gets a label from its path: head parameters (and a U-Net's
decoder) and backbone (or U-Net encoder) blocks at index ≥ ``frozen_blocks``
are ``trainable``, the rest ``frozen``. Frozen
labels go to ``optax.set_to_zero()``, so they never move and hold no optimizer
state (Adam moments or momentum exist only for what trains).
"""

import jax
import optax

OPTIMIZERS = ('adam', 'adamw', 'sgd')


def frozen_blocks_for(unfreeze: str, block_names: tuple[str, ...], backbone: str) -> int:
  """Number of leading blocks kept frozen for ``unfreeze`` ('all' or last N)."""
  num_blocks = len(block_names)
  if str(unfreeze) == 'all':
    return 0
  try:
    count = int(unfreeze)
  except ValueError:
    count = -1
  if not 0 <= count <= num_blocks:
    raise ValueError(f"Invalid unfreeze={unfreeze!r}. Use unfreeze='all' or an integer "
                     f'0..{num_blocks} for {backbone} (blocks: {", ".join(block_names)}).')
  return num_blocks - count


# Parts that always train: a classifier's head; a U-Net's decoder and output layer.
ALWAYS_TRAINABLE = ('head', 'decoder', 'logits')
# Where the blocks that phases freeze live: a classifier's backbone, a U-Net's encoder.
BLOCK_OWNERS = ('backbone', 'encoder')


def _path_label(path, frozen_blocks: int) -> str:
  keys = [getattr(k, 'key', getattr(k, 'idx', None)) for k in path]
  if keys[0] in ALWAYS_TRAINABLE:
    return 'trainable'
  if keys[0] in BLOCK_OWNERS and keys[1] == 'blocks' and isinstance(keys[2], int):
    return 'trainable' if keys[2] >= frozen_blocks else 'frozen'
  raise ValueError(f'Parameter {jax.tree_util.keystr(path)} belongs to no block or head; '
                   'every backbone must keep its parameters under `blocks`.')


def parameter_labels(params, frozen_blocks: int):
  """A pytree like ``params`` with 'trainable' or 'frozen' at every leaf."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: _path_label(path, frozen_blocks), params)


def count_trainable(params, labels) -> int:
  return sum(int(p.size) for p, label in zip(jax.tree.leaves(params), jax.tree.leaves(labels))
             if label == 'trainable')


def phase_optimizer(phase) -> optax.GradientTransformation:
  """The optimizer of one phase config (optimizer, learning_rate, momentum, ...)."""
  if phase.optimizer == 'adam':
    tx = optax.adam(phase.learning_rate)
    return optax.chain(optax.add_decayed_weights(phase.weight_decay), tx) if phase.weight_decay else tx
  if phase.optimizer == 'adamw':
    return optax.adamw(phase.learning_rate, weight_decay=phase.weight_decay)
  if phase.optimizer == 'sgd':
    return optax.chain(optax.add_decayed_weights(phase.weight_decay),
                       optax.sgd(phase.learning_rate, momentum=phase.momentum or None,
                                 nesterov=phase.nesterov))
  raise ValueError(f'Unknown optimizer {phase.optimizer!r}; valid choices: {OPTIMIZERS}.')


def make_optimizer(phase, labels, accumulation: int = 1) -> optax.GradientTransformation:
  """The phase optimizer on trainable labels; frozen labels get no state.

  ``accumulation`` > 1 (``train.grad_accumulation``) averages that many
  steps' gradients before one update (``optax.MultiSteps``); the steps in
  between leave the parameters unchanged. Only trainable parameters get an
  accumulator.
  """
  if isinstance(accumulation, bool) or not isinstance(accumulation, int) or accumulation < 1:
    raise ValueError(f'train.grad_accumulation={accumulation!r}: give a whole number ≥ 1 '
                     '(1 = update after every batch).')
  tx = phase_optimizer(phase)
  if accumulation > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=accumulation).gradient_transformation()
  return optax.partition({'trainable': tx, 'frozen': optax.set_to_zero()}, labels)
