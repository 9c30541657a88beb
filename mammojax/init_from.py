"""``model.init_from``: start a model's encoder from another run's U-Net encoder.

Resume order: a checkpoint in the workdir wins; else ``init_from`` (the best
checkpoint of a pretrain_autoencoder or segmentation run) sets the encoder;
else pretrained weights; else random initialisation. The source run's
``config.json`` rebuilds its model, so its checkpoint restores with the right
structure, and the copied arrays are the source's bit for bit.
"""

import json
import pathlib

import jax
import ml_collections
import numpy as np

from mammojax import models
from mammojax.training import checkpoint, steps


def read_encoder(run_dir: str | pathlib.Path) -> tuple[dict, dict, ml_collections.ConfigDict]:
  """(encoder params, encoder batch stats, the run's model config) of a U-Net run."""
  run_dir = pathlib.Path(run_dir)
  config_path = run_dir / 'config.json'
  if not config_path.is_file():
    raise ValueError(f'model.init_from={run_dir} holds no config.json; give the workdir of a '
                     'finished pretrain_autoencoder or segmentation run.')
  source = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  if source.get('task', 'classification') not in ('autoencoder', 'segmentation'):
    raise ValueError(f'model.init_from={run_dir} is a {source.get("task")} run; give a '
                     'pretrain_autoencoder or segmentation run (they hold a U-Net encoder).')
  model = models.create_unet(source.model, seed=0, autoencoder=source.task == 'autoencoder')
  _, params, batch_stats = steps.split_model(model)
  checkpoints = checkpoint.RunCheckpoints(run_dir)
  try:
    if checkpoints.best.latest_step() is None:
      raise ValueError(f'model.init_from={run_dir} has no best checkpoint; train it first.')
    restored = checkpoints.restore_state(
        checkpoints.best, {'params': params, 'batch_stats': batch_stats},
        jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  finally:
    checkpoints.close()
  as_numpy = lambda tree: jax.tree.map(np.asarray, tree)  # noqa: E731
  return (as_numpy(restored['params']['encoder']),
          as_numpy(restored['batch_stats'].get('encoder', {})), source.model)


def _check_sizes(source_model, target_unet, run_dir) -> None:
  fields = ('depth', 'width', 'padding', 'norm')
  differ = [f'{f}: {source_model.unet[f]} vs {target_unet[f]}' for f in fields
            if source_model.unet[f] != target_unet[f]]
  if differ:
    raise ValueError(f'model.init_from={run_dir} has another U-Net ({"; ".join(differ)}); set '
                     'the same --config.model.unet.* values as that run.')


def _graft(tree: dict, path: tuple, subtree: dict) -> dict:
  """A copy of ``tree`` with ``subtree`` at ``path`` (nested dict keys)."""
  if not path:
    return subtree
  return {**tree, path[0]: _graft(tree[path[0]], path[1:], subtree)}


def unet_with_encoder(params, batch_stats, model_config, run_dir):
  """A U-Net's (params, batch_stats) with the encoder of ``run_dir``."""
  encoder, encoder_stats, source = read_encoder(run_dir)
  _check_sizes(source, model_config.unet, run_dir)
  stats = _graft(batch_stats, ('encoder',), encoder_stats) if encoder_stats else batch_stats
  return _graft(params, ('encoder',), encoder), stats


def classifier_with_encoder(params, batch_stats, model_config, run_dir):
  """A unet_encoder classifier's (params, batch_stats), its encoder blocks from ``run_dir``.

  The backbone keeps the encoder's levels as its first blocks (then its own
  'features' block), so block i of the source encoder is backbone block i.
  """
  if not model_config.backbone.startswith('unet_encoder'):
    raise ValueError(f'model.init_from needs a U-Net encoder backbone (unet_encoder or '
                     f'unet_encoder_gmp), not {model_config.backbone!r}.')
  encoder, encoder_stats, source = read_encoder(run_dir)
  _check_sizes(source, model_config.unet, run_dir)
  for tree, source_tree in ((params, encoder), (batch_stats, encoder_stats)):
    for index, block in source_tree.get('blocks', {}).items():
      tree['backbone']['blocks'][index] = block
  return params, batch_stats
