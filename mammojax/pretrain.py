"""Self-supervised pretraining: a U-Net autoencoder learns to reproduce its input.

Unlabelled images (a folder with ``data.source=images``, or the images of any
source) are cut into windows like segmentation's; the network reconstructs
each window (MSE), so its encoder learns features of the images without a
single label. ``model.init_from=WORKDIR`` then starts a classifier's
``unet_encoder`` backbone, or a segmentation U-Net's encoder, from it.
"""

import logging

import jax
import numpy as np

from mammojax import unet_run, workdir as workdir_lib
from mammojax.evaluation import segmentation_figure
from mammojax.training import phase_loop
from mammojax.training import segmentation_steps
from mammojax.training.progress import Progress


def reconstruction_scores(outputs: list[np.ndarray], images: list[np.ndarray]) -> dict:
  """MSE over every pixel and PSNR against the images' own value range."""
  flat_out = np.concatenate([o.ravel() for o in outputs])
  flat_in = np.concatenate([i.ravel() for i in images])
  mse = float(np.mean((flat_out - flat_in) ** 2))
  value_range = float(flat_in.max() - flat_in.min()) or 1.0
  return {'loss': mse, 'psnr': float(10 * np.log10(value_range ** 2 / max(mse, 1e-12)))}


def autoencoder_hooks(config, run, mesh) -> phase_loop.TaskHooks:
  """How the phase loop trains and validates the autoencoder (best = highest PSNR)."""
  predict_fn = segmentation_steps.jit_predict_step(run.graphdef, mesh, sigmoid=False,
                                                   dtype=config.dtype)
  val = run.data['val']

  def make_step(phase):
    return segmentation_steps.jit_train_step(segmentation_steps.StepConfig(
        run.graphdef, phase.frozen_blocks, 'mse', config.dtype), phase.tx, mesh)

  def train_epoch(step_fn, state, **kwargs):
    return unet_run.train_epoch(step_fn, state, run.data['train'], config, mesh=mesh, **kwargs)

  def validate(state, epoch):
    del epoch
    predict = unet_run.image_predictor(predict_fn, state.params, state.batch_stats, config,
                                       run.out_size, mesh)
    return reconstruction_scores([predict(image) for image in val.images], val.images)

  return phase_loop.TaskHooks(make_step, train_epoch, validate, monitor='psnr')


def evaluate_best(config, run, progress: Progress, mesh) -> dict:
  """Reconstruction scores of the best checkpoint, a panel figure, summary.json."""
  best = unet_run.restore_best(run, mesh)
  predict = unet_run.image_predictor(
      segmentation_steps.jit_predict_step(run.graphdef, mesh, sigmoid=False,
                                          dtype=config.dtype), best['params'],
      best['batch_stats'], config, run.out_size, mesh)
  results = {}
  for name in ('val', 'test'):
    images = run.data[name].images
    if images:
      outputs = [predict(image) for image in images]
      results[name] = reconstruction_scores(outputs, images)
  if jax.process_index() == 0:
    images = run.data['val'].images[:3]
    segmentation_figure.save_reconstructions(images, [predict(i) for i in images],
                                             run.workdir / 'plots' / 'reconstructions.png')
  summary = {'task': 'autoencoder', 'best_epoch': progress.best_epoch,
             'best_val_psnr': progress.best_val_metric, 'epochs_run': progress.global_epoch,
             'train_seconds': sum(progress.phase_seconds.values()),
             'encoder_blocks': list(run.phases[0].unfrozen_blocks), **results}
  workdir_lib.write_json(run.workdir / 'summary.json', summary)
  logging.info('Best epoch %d: val PSNR %.2f dB', progress.best_epoch, progress.best_val_metric)
  return summary


def train_and_evaluate(config, workdir) -> dict:
  """Runs (or resumes) autoencoder pretraining, then scores its best checkpoint."""
  run = unet_run.build_unet_run(config, workdir, autoencoder=True)
  return unet_run.train_and_evaluate(config, run, make_hooks=autoencoder_hooks,
                                     evaluate_best=evaluate_best, console_keys=('val_psnr',))
