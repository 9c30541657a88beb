"""Experiment grids: strategy × backbone × unfrozen blocks × augmentation × weights ×
preprocessing.

Each point of the grid is an ordinary run in its own sub-workdir, built from
the strategy's config file (``configs/<strategy>.py``) plus the point's
overrides. Re-running the sweep skips finished points (their
``summary.json`` exists) and resumes the unfinished one from its checkpoint;
a point that fails is recorded with its error and the sweep goes on.
``results.csv`` gathers every point's ``summary.json``.
"""

import importlib.util
import itertools
import logging
import pathlib
import traceback

import ml_collections

from mammojax import workdir as workdir_lib
from mammojax.evaluation import report

AXES = ('strategy', 'backbone', 'unfreeze', 'augmentation', 'weights', 'preprocessing')
WEIGHTS = ('random', 'imagenet', 'autoencoder')
# Named preprocessing variants (overrides of config.data.preprocess).
PREPROCESSING = {
    'default': {},
    'no_clahe': {'clahe_clip_limit': 0.0},
    'breast_mask': {'breast_mask': True},
    'gcn': {'normalize': 'gcn'},
    'canonical': {'canonical_side': 'left', 'breast_mask': True},
}


def _values(text: str) -> list[str]:
  return [value.strip() for value in str(text).split(',') if value.strip()]


def load_config_file(path: pathlib.Path, arg: str) -> ml_collections.ConfigDict:
  """``get_config(arg)`` of a config file, as ``--config=path:arg`` would load it."""
  if not path.is_file():
    raise ValueError(f'No config file {path} for sweep.strategy; the strategies are the '
                     f'files of {path.parent}.')
  spec = importlib.util.spec_from_file_location(f'mammojax_sweep_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg or None)


def _apply_weights(config, weights: str, sweep) -> None:
  if weights == 'imagenet':
    files = dict(item.split('=', 1) for item in _values(sweep.imagenet_weights))
    if config.model.backbone not in files:
      raise ValueError(f'weights=imagenet needs a file for {config.model.backbone} in '
                       'sweep.imagenet_weights (backbone=path,...).')
    config.model.pretrained = files[config.model.backbone]
    config.data.preprocess.normalize = 'none'  # ImageNet scaling starts from [0, 1]
  elif weights == 'autoencoder':
    if not sweep.autoencoder_run:
      raise ValueError('weights=autoencoder needs sweep.autoencoder_run=WORKDIR of a '
                       'pretrain_autoencoder run.')
    config.model.init_from = sweep.autoencoder_run


def point_config(sweep_config, point: dict) -> ml_collections.ConfigDict:
  """The run config of one grid point."""
  sweep = sweep_config.sweep
  config = load_config_file(pathlib.Path(sweep.configs_dir) / f'{point["strategy"]}.py',
                            sweep.config_arg)
  config.seed = sweep_config.seed
  config.model.backbone = point['backbone']
  config.data.augmentation = point['augmentation']
  # ``unfreeze`` sets the first phase that trains backbone blocks (finetune's
  # second phase); phases that keep the backbone frozen ('0') stay so.
  for name in config.schedule.split(','):
    if config.phases[name].unfreeze != '0':
      config.phases[name].unfreeze = point['unfreeze']
      break
  for field, value in PREPROCESSING[point['preprocessing']].items():
    config.data.preprocess[field] = value
  _apply_weights(config, point['weights'], sweep)
  return config


def grid_points(sweep) -> list[dict]:
  """Every combination of the axes' comma-separated values, in a stable order."""
  axes = {axis: _values(sweep[axis]) for axis in AXES}
  for axis, values in axes.items():
    if not values:
      raise ValueError(f'sweep.{axis} is empty; give at least one value.')
  unknown = [w for w in axes['weights'] if w not in WEIGHTS]
  unknown += [p for p in axes['preprocessing'] if p not in PREPROCESSING]
  if unknown:
    raise ValueError(f'Unknown sweep values {unknown}; weights: {WEIGHTS}, preprocessing: '
                     f'{tuple(PREPROCESSING)}.')
  return [dict(zip(AXES, values)) for values in itertools.product(*axes.values())]


def point_name(point: dict) -> str:
  return '-'.join(f'{point[axis]}' if axis != 'unfreeze' else f'u{point[axis]}'
                  for axis in AXES)


def _result_row(name: str, point: dict, workdir: pathlib.Path, summary: dict | None,
                error: str = '') -> dict:
  row = {'run': name, **point, 'status': 'failed' if error else 'done', 'error': error,
         'workdir': str(workdir)}
  if summary:
    row['train_seconds'] = summary['train_seconds']
    row.update({f'seconds_{p["name"]}': p['seconds'] for p in summary.get('phases', [])})
    row['trainable_params'] = summary['phases'][-1]['trainable_params'] if summary.get(
        'phases') else ''
    row['val_auc'] = summary['val']['auc']
    row.update({f'test_{k}': summary['test'][k] for k in ('accuracy', 'auc', 'f1', 'precision',
                                                          'recall')})
  return row


def run_point(train_fn, config, name: str, point: dict, workdir: pathlib.Path) -> dict:
  """Trains one point (skipping it when finished); its results.csv row."""
  summary_path = workdir / 'summary.json'
  if summary_path.exists() and not (workdir / 'error.txt').exists():
    logging.info('Sweep point %s: finished before, skipped.', name)
    return _result_row(name, point, workdir, workdir_lib.read_json(summary_path))
  logging.info('Sweep point %s: training in %s', name, workdir)
  try:
    (workdir / 'error.txt').unlink(missing_ok=True)
    return _result_row(name, point, workdir, train_fn(config, workdir))
  except Exception as error:  # pylint: disable=broad-except  (one point must not stop the grid)
    logging.error('Sweep point %s failed: %s', name, error)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'error.txt').write_text(traceback.format_exc())
    return _result_row(name, point, workdir, None, error=f'{type(error).__name__}: {error}')


def run_sweep(sweep_config, workdir, train_fn) -> list[dict]:
  """Every grid point in ``workdir/<point name>``; returns the results rows.

  ``train_fn(config, workdir) -> summary`` trains one point (the caller gives
  ``train.train_and_evaluate``: the sweep knows nothing of how a run trains).
  """
  workdir = workdir_lib.prepare(workdir, sweep_config)
  points = grid_points(sweep_config.sweep)
  configs = {point_name(p): point_config(sweep_config, p) for p in points}  # all checked first
  rows = []
  for point in points:
    name = point_name(point)
    rows.append(run_point(train_fn, configs[name], name, point, workdir / name))
    report.write_results_csv(workdir / 'results.csv', rows)  # partial results survive a kill
  failed = [row['run'] for row in rows if row['status'] == 'failed']
  logging.info('Sweep: %d points, %d failed%s.', len(rows), len(failed),
               f' ({", ".join(failed)})' if failed else '')
  return rows
