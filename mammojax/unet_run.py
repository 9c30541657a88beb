"""What segmentation and autoencoder pretraining share: data, model, epochs of windows.

Both train a U-Net on windows drawn from whole preprocessed images
(``data/segmentation_data.py``) with the common phase loop, and predict
whole images through overlapping windows (``training/sliding_window.py``).
"""

import dataclasses
import pathlib

import jax
import numpy as np

from mammojax import init_from, models, reporting, workdir as workdir_lib
from mammojax.data import datasets, pipeline, preprocess, segmentation_data
from mammojax.training import checkpoint, loop, metric_writer, parallel, phase_loop
from mammojax.training import sliding_window, steps
from mammojax.training import segmentation_losses

SPLITS = ('train', 'val', 'test')


@dataclasses.dataclass(frozen=True)
class UNetRun:
  """A U-Net run: workdir, masked images per split, the split model, phases, sizes."""
  workdir: pathlib.Path
  data: dict
  class_names: tuple[str, ...]
  graphdef: object
  params: dict
  batch_stats: dict
  phases: list
  out_size: int  # the model's output side for a ``data.window`` input


def validate_config(config, model, *, autoencoder: bool) -> int:
  """Fails fast (before the workdir is touched); returns the output window side."""
  if 'window' not in config.data or 'eval' not in config:
    raise ValueError(f'task={config.task} needs the window settings of '
                     'configs/segmentation.py or configs/pretrain_autoencoder.py; start from '
                     'one of those configs.')
  datasets.configured_sources(config.data)
  losses = ('mse',) if autoencoder else segmentation_losses.SEGMENTATION_LOSSES
  if config.train.loss not in losses:
    raise ValueError(f'Unknown train.loss {config.train.loss!r} for this task; valid '
                     f'choices: {losses}.')
  if not 0 <= config.data.foreground_fraction <= 1:
    raise ValueError(f'data.foreground_fraction={config.data.foreground_fraction} must be in '
                     '[0, 1].')
  try:
    out_size = model.output_size(config.data.window)
  except ValueError as error:
    raise ValueError(f'data.window={config.data.window}: {error}') from None
  if not 1 <= config.data.stride <= out_size:
    raise ValueError(f'data.stride={config.data.stride} must be in 1..{out_size} (the '
                     'output window) so that windows overlap or touch.')
  preprocess.PreprocessConfig.from_config(config.data.preprocess)
  return out_size


def build_unet_run(config, workdir, *, autoencoder: bool) -> UNetRun:
  """Checks the config, builds the U-Net and phases, then claims the workdir and data."""
  model = models.create_unet(config.model, seed=config.seed, autoencoder=autoencoder)
  out_size = validate_config(config, model, autoencoder=autoencoder)
  graphdef, params, batch_stats = steps.split_model(model)
  phases = loop.resolve_phases(config, params, model.encoder.block_names)
  workdir = workdir_lib.prepare(workdir, config)
  found = datasets.split_records(config.data, seed=config.seed)
  pp_config = preprocess.PreprocessConfig.from_config(config.data.preprocess)
  cache = config.data.cache_dir or datasets.default_cache_root() / 'patches'
  data = {name: segmentation_data.load_or_build_masked_images(found.splits[name], pp_config,
                                                              cache_dir=cache)
          for name in SPLITS}
  for name in ('train', 'val'):
    if not data[name].images:
      raise ValueError(f'The {name} split holds no image; check data.root and data.classes '
                       '(data_report.json lists what was skipped).')
  skipped = found.skipped + [s for masked in data.values() for s in masked.skipped]
  report = datasets.make_report(found.class_names, {n: d.records for n, d in data.items()},
                                skipped, found.repaired)
  workdir_lib.write_json(workdir / 'data_report.json', report)
  workdir_lib.write_json(workdir / 'preprocess.json', pp_config.to_dict())
  return UNetRun(workdir, data, found.class_names, graphdef, params, batch_stats, phases,
                 out_size)


def train_epoch(step_fn, state, masked, config, *, epoch: int, lr_scale: float, mesh,
                description: str, start_batch: int = 0, stop=lambda: False):
  """Random windows of one epoch from ``start_batch``: (state, {'loss'}, windows/s,
  batches run or None when the epoch finished)."""
  data = config.data
  batches = segmentation_data.window_batches(
      masked, window=data.window, windows_per_image=data.windows_per_image,
      foreground_fraction=data.foreground_fraction, augmentation=data.augmentation,
      global_batch_size=data.batch_size, seed=config.seed, epoch=epoch,
      process_index=jax.process_index(), process_count=jax.process_count())[start_batch:]
  state, outputs, seconds, stopped = loop.run_batches(
      step_fn, state, batches, lr_scale=lr_scale, mesh=mesh, description=description, stop=stop)
  loss = float(np.mean([float(o['loss']) for o in outputs]))
  return (state, {'loss': loss}, len(outputs) * data.batch_size / seconds,
          start_batch + len(outputs) if stopped else None)


def image_predictor(predict_fn, params, batch_stats, config, out_size: int, mesh):
  """image (H, W) → per-pixel outputs (H, W) through overlapping windows."""

  def predict_windows(windows: np.ndarray) -> np.ndarray:
    source = pipeline.ArraySource(windows, np.zeros(len(windows), np.int32))
    return loop.predict_examples(predict_fn, params, batch_stats, source,
                                 batch_size=config.data.eval_batch_size, mesh=mesh)

  def predict(image: np.ndarray) -> np.ndarray:
    return sliding_window.predict_full_image(predict_windows, image, window=config.data.window,
                                             out_size=out_size, stride=config.data.stride)
  return predict


def restore_checkpoint(workdir, params, batch_stats, mesh) -> dict:
  """{'params', 'batch_stats'} of a run's best checkpoint (structure of the arguments)."""
  checkpoints = checkpoint.RunCheckpoints(workdir)
  try:
    if checkpoints.best.latest_step() is None:
      raise ValueError(f'{workdir} has no best checkpoint; train it first.')
    return checkpoints.restore_state(checkpoints.best,
                                     {'params': params, 'batch_stats': batch_stats},
                                     parallel.replicated(mesh))
  finally:
    checkpoints.close()


def restore_best(run: UNetRun, mesh) -> dict:
  """{'params', 'batch_stats'} of the run's best checkpoint."""
  return restore_checkpoint(run.workdir, run.params, run.batch_stats, mesh)


def initial_state(config, run: UNetRun, checkpoints) -> tuple[dict, dict]:
  """(params, batch_stats) to start from: ``init_from``'s encoder on a fresh run.

  A checkpoint in the workdir wins (it is restored next), so ``init_from``
  is read only when the run starts.
  """
  if config.model.init_from and checkpoints.latest_meta() is None:
    return init_from.unet_with_encoder(run.params, run.batch_stats, config.model,
                                       config.model.init_from)
  return run.params, run.batch_stats


def train_and_evaluate(config, run: UNetRun, *, make_hooks, evaluate_best,
                       console_keys: tuple[str, ...]) -> dict:
  """Resumes or starts ``run``, trains its phases with ``make_hooks(config, run, mesh)``,
  then returns ``evaluate_best(config, run, progress, mesh)``."""
  mesh = parallel.create_mesh()
  checkpoints = checkpoint.RunCheckpoints(run.workdir, keep_latest=config.train.keep_checkpoints,
                                         max_blocked_share=config.train.checkpoint_share)
  writer = metric_writer.MetricWriter(run.workdir, console_keys=console_keys)
  try:
    params, batch_stats = initial_state(config, run, checkpoints)
    progress, state = phase_loop.resume(checkpoints, run.phases, params, batch_stats, mesh)
    with jax.set_mesh(mesh):
      state, progress = phase_loop.run_phases(make_hooks(config, run, mesh), run.phases, state,
                                              progress, mesh=mesh, checkpoints=checkpoints,
                                              writer=writer)
      summary = evaluate_best(config, run, progress, mesh)
  finally:
    writer.close()
    checkpoints.close()
  if jax.process_index() == 0:
    reporting.write_unet_report(run.workdir)
  return summary
