"""Lesion segmentation: train a U-Net on windows, score whole images, predict masks.

``train_and_evaluate`` runs (or resumes) the phases with early stopping on the
validation Dice of whole images (overlapping windows blended back), then
picks the sigmoid threshold on validation, scores the test images with it
and writes per-image Dice/IoU, panels and ``summary.json``.
"""

import csv
import dataclasses
import json
import logging
import pathlib
from typing import Callable

import cv2
import jax
import ml_collections
import numpy as np

from mammojax import models, unet_run, workdir as workdir_lib
from mammojax.data import image_io, preprocess
from mammojax.evaluation import mask_postprocess, rle, segmentation_figure
from mammojax.evaluation import segmentation_metrics as seg_metrics
from mammojax.training import checkpoint, parallel, phase_loop
from mammojax.training import segmentation_steps, steps
from mammojax.training.progress import Progress


def predict_images(predict, images: list[np.ndarray]) -> list[np.ndarray]:
  return [predict(image) for image in images]


def score_images(probs: list[np.ndarray], masks: list[np.ndarray], threshold: float) -> dict:
  """Dice/IoU per image (mean) and pooled, pixel accuracy, and a BCE 'loss'.

  Images may differ in size: the pooled scores treat all pixels as one image.
  """
  per_image = [seg_metrics.segmentation_metrics(p[None], m[None], threshold)
               for p, m in zip(probs, masks)]
  flat_probs = np.concatenate([p.ravel() for p in probs])[None, None]
  flat_masks = np.concatenate([m.ravel() for m in masks])[None, None]
  pooled = seg_metrics.segmentation_metrics(flat_probs, flat_masks, threshold)
  clipped = np.clip(flat_probs, 1e-7, 1 - 1e-7)
  bce = -np.mean(flat_masks * np.log(clipped) + (1 - flat_masks) * np.log(1 - clipped))
  return {'loss': float(bce), 'dice': float(np.mean([m['dice'] for m in per_image])),
          'iou': float(np.mean([m['iou'] for m in per_image])),
          'dice_overall': pooled['dice'], 'iou_overall': pooled['iou'],
          'pixel_accuracy': pooled['pixel_accuracy']}


def segmentation_hooks(config, run, mesh) -> phase_loop.TaskHooks:
  """How the phase loop trains and validates a segmentation U-Net."""
  predict_fn = segmentation_steps.jit_predict_step(run.graphdef, mesh, dtype=config.dtype)
  val = run.data['val']

  def make_step(phase):
    return segmentation_steps.jit_train_step(segmentation_steps.StepConfig(
        run.graphdef, phase.frozen_blocks, config.train.loss, config.dtype), phase.tx, mesh)

  def train_epoch(step_fn, state, **kwargs):
    return unet_run.train_epoch(step_fn, state, run.data['train'], config, mesh=mesh, **kwargs)

  def validate(state, epoch):
    predict = unet_run.image_predictor(predict_fn, state.params, state.batch_stats, config,
                                       run.out_size, mesh)
    probs = predict_images(predict, val.images)
    every = config.eval.panels_every_epochs
    if every and (epoch + 1) % every == 0 and jax.process_index() == 0:
      segmentation_figure.save_panels(
          val.images[:3], val.masks[:3], probs[:3],
          run.workdir / 'plots' / f'segmentation_epoch{epoch + 1:03d}.png', threshold=0.5)
    return score_images(probs, val.masks, threshold=0.5)

  return phase_loop.TaskHooks(make_step, train_epoch, validate, monitor='dice')


def _write_per_image(path: pathlib.Path, records, probs, masks, threshold: float) -> None:
  if jax.process_index() != 0:
    return
  with open(path, 'w', newline='') as file:
    writer = csv.writer(file)
    writer.writerow(['id', 'patient_id', 'source', 'dice', 'iou', 'true_pixels',
                     'predicted_pixels'])
    for record, prob, mask in zip(records, probs, masks):
      pred = prob >= threshold
      writer.writerow([record['id'], record['patient_id'], record['source'],
                       f'{seg_metrics.dice(pred, mask):.6f}', f'{seg_metrics.iou(pred, mask):.6f}',
                       int(mask.sum()), int(pred.sum())])


def evaluate_best(config, run, progress: Progress, mesh) -> dict:
  """Threshold from validation, test scores, per-image CSVs, panels, summary.json."""
  best = unet_run.restore_best(run, mesh)
  predict = unet_run.image_predictor(
      segmentation_steps.jit_predict_step(run.graphdef, mesh, dtype=config.dtype),
      best['params'], best['batch_stats'], config, run.out_size, mesh)
  probs = {name: predict_images(predict, run.data[name].images) for name in ('val', 'test')}
  val_masks = np.concatenate([m.ravel() for m in run.data['val'].masks])[None, None]
  threshold, _ = seg_metrics.best_threshold(
      np.concatenate([p.ravel() for p in probs['val']])[None, None], val_masks)
  results = {}
  for name in ('val', 'test'):
    masked = run.data[name]
    if not masked.images:
      continue
    results[name] = {**score_images(probs[name], masked.masks, threshold),
                     'images': len(masked.images)}
    post = [mask_postprocess.postprocess_mask(p, threshold=threshold,
                                              min_area=config.eval.min_area) for p in probs[name]]
    results[name]['postprocessed'] = score_images([p.astype(np.float32) for p in post],
                                                  masked.masks, 0.5)
    _write_per_image(run.workdir / f'predictions_{name}.csv', masked.records, probs[name],
                     masked.masks, threshold)
  if jax.process_index() == 0 and run.data['test'].images:
    segmentation_figure.save_panels(run.data['test'].images[:4], run.data['test'].masks[:4],
                                    probs['test'][:4], run.workdir / 'plots' / 'test_masks.png',
                                    threshold=threshold)
  summary = {'task': 'segmentation', 'architecture': config.model.architecture,
             'threshold': threshold, 'best_epoch': progress.best_epoch,
             'best_val_dice': progress.best_val_metric, 'epochs_run': progress.global_epoch,
             'train_seconds': sum(progress.phase_seconds.values()),
             'phases': [{'name': p.name, 'seconds': progress.phase_seconds.get(p.name, 0.0),
                         'trainable_params': p.trainable_params,
                         'unfrozen_blocks': list(p.unfrozen_blocks)} for p in run.phases],
             **results}
  workdir_lib.write_json(run.workdir / 'summary.json', summary)
  logging.info('Best epoch %d: val Dice %.4f; threshold %.2f; test Dice %.4f IoU %.4f',
               progress.best_epoch, progress.best_val_metric, threshold,
               results.get('test', {}).get('dice', float('nan')),
               results.get('test', {}).get('iou', float('nan')))
  return summary


def train_and_evaluate(config, workdir) -> dict:
  """Runs (or resumes) the segmentation phases, then evaluates the best checkpoint."""
  run = unet_run.build_unet_run(config, workdir, autoencoder=False)
  return unet_run.train_and_evaluate(config, run, make_hooks=segmentation_hooks,
                                     evaluate_best=evaluate_best,
                                     console_keys=('val_dice', 'val_iou'))


def evaluate(config, workdir) -> dict:
  """Re-scores a finished segmentation run (``--mode=evaluate``)."""
  checkpoints = checkpoint.RunCheckpoints(workdir)
  try:
    meta = checkpoints.latest_meta()
  finally:
    checkpoints.close()
  if meta is None:
    raise ValueError(f'{workdir} holds no finished checkpoint; train it first.')
  run = unet_run.build_unet_run(config, workdir, autoencoder=False)
  return evaluate_best(config, run, Progress.from_json(meta), parallel.create_mesh())


def write_mask_png(path: pathlib.Path, mask: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  if not cv2.imwrite(str(path), (mask > 0).astype(np.uint8) * 255):
    raise ValueError(f'Cannot write {path}; check the folder is writable.')


def _image_paths(input_dir: pathlib.Path) -> list[pathlib.Path]:
  paths = sorted(p for p in input_dir.rglob('*')
                 if p.is_file() and p.suffix.lower() in image_io.IMAGE_SUFFIXES)
  if not paths:
    raise ValueError(f'No image ({", ".join(image_io.IMAGE_SUFFIXES)}) found under {input_dir}.')
  return paths


@dataclasses.dataclass(frozen=True)
class MaskPredictor:
  """A finished segmentation run as a function: image file → post-processed mask.

  The mask is thresholded with the run's validation threshold, holes filled,
  components under ``min_area`` pixels dropped, and returned at the image's
  original size and orientation.
  """
  predict: Callable[[np.ndarray], np.ndarray]
  threshold: float
  preprocess_config: preprocess.PreprocessConfig
  min_area: int

  def __call__(self, path) -> np.ndarray:
    raw = image_io.load_grayscale(path)
    prepared = preprocess.prepare_full_image(raw, self.preprocess_config)
    prob = self.predict(preprocess.normalize(prepared.image, self.preprocess_config))
    mask = mask_postprocess.postprocess_mask(prob, threshold=self.threshold,
                                             min_area=self.min_area)
    mask = cv2.flip(mask, 1) if prepared.flipped else mask
    return cv2.resize(mask, (raw.shape[1], raw.shape[0]), interpolation=cv2.INTER_NEAREST)


def load_mask_predictor(workdir, config=None) -> MaskPredictor:
  """The best checkpoint of a segmentation run; ``config`` defaults to the run's own."""
  workdir = pathlib.Path(workdir)
  if not (workdir / 'summary.json').is_file():
    raise ValueError(f'{workdir} holds no finished segmentation run (no summary.json); '
                     'train one with configs/segmentation.py first.')
  if config is None:
    config = ml_collections.ConfigDict(json.loads((workdir / 'config.json').read_text()))
  threshold = json.loads((workdir / 'summary.json').read_text())['threshold']
  pp_config = preprocess.PreprocessConfig(**json.loads((workdir / 'preprocess.json').read_text()))
  model = models.create_unet(config.model, seed=config.seed)
  graphdef, params, batch_stats = steps.split_model(model)
  mesh = parallel.create_mesh()
  best = unet_run.restore_checkpoint(workdir, params, batch_stats, mesh)
  # Runs from before config.dtype existed computed in float32.
  predict_fn = segmentation_steps.jit_predict_step(graphdef, mesh,
                                                   dtype=config.get('dtype', 'float32'))
  predict = unet_run.image_predictor(predict_fn, best['params'], best['batch_stats'], config,
                                     model.output_size(config.data.window), mesh)
  return MaskPredictor(predict, threshold, pp_config, config.eval.min_area)


def predict_folder(config, workdir, input_dir, output_csv) -> int:
  """Mask PNGs (next to ``output_csv``, in ``masks/``) and a run-length-encoded CSV.

  Rows are sorted by image id, so the CSV is the same whatever
  ``data.eval_batch_size``.
  """
  paths = _image_paths(pathlib.Path(input_dir))
  predictor = load_mask_predictor(workdir, config)
  output_csv = pathlib.Path(output_csv)
  output_csv.parent.mkdir(parents=True, exist_ok=True)
  with rle.SubmissionWriter(output_csv) as submission:
    for path in paths:
      mask = predictor(path)
      write_mask_png(output_csv.parent / 'masks' / f'{path.stem}.png', mask)
      submission.add([path.stem], [mask])
  logging.info('Wrote %d masks and %s (threshold %.2f).', len(paths), output_csv,
               predictor.threshold)
  return len(paths)
