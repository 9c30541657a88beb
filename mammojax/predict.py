"""``--mode=predict``: score a folder of new images with a run's best checkpoint.

Each image is taken as a lesion patch (like CBIS-DDSM's cropped ROI files):
it goes through the run's stored preprocessing, is resized to the patch size,
and gets one row in the output CSV.
"""

import csv
import json
import logging
import pathlib

import cv2
import numpy as np

from mammojax import models
from mammojax.data import image_io, pipeline, preprocess
from mammojax.training import checkpoint, loop, parallel, steps

IMAGE_SUFFIXES = image_io.IMAGE_SUFFIXES


def load_patch(path: pathlib.Path, config: preprocess.PreprocessConfig, size: int) -> np.ndarray:
  image = preprocess.preprocess_full_image(image_io.load_grayscale(path), config)
  image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
  return preprocess.normalize(image, config)


def predict_folder(config, workdir: str | pathlib.Path, input_dir: str | pathlib.Path,
                   output_csv: str | pathlib.Path) -> int:
  """Writes ``output_csv`` (path, probabilities, prediction); returns the row count."""
  workdir, input_dir = pathlib.Path(workdir), pathlib.Path(input_dir)
  paths = sorted(p for p in input_dir.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
  if not paths:
    raise ValueError(f'No image ({", ".join(IMAGE_SUFFIXES)}) found under {input_dir}.')
  stored = workdir / 'preprocess.json'
  if not stored.exists():
    raise ValueError(f'{workdir} holds no trained run (no preprocess.json); pass the '
                     '--workdir of a finished training run.')
  pp_config = preprocess.PreprocessConfig(**json.loads(stored.read_text()))
  images, kept = [], []
  for path in paths:
    try:
      images.append(load_patch(path, pp_config, config.data.patch_size))
      kept.append(path)
    except ValueError as error:
      logging.warning('Skipping %s: %s', path, error)
  model = models.create_classifier(config.model, seed=config.seed, load_pretrained=False)
  graphdef, params, batch_stats = steps.split_model(model)
  mesh = parallel.create_mesh()
  checkpoints = checkpoint.RunCheckpoints(workdir)
  try:
    if checkpoints.best.latest_step() is None:
      raise ValueError(f'{workdir} has no best checkpoint; train it first.')
    best = checkpoints.restore_state(checkpoints.best,
                                     {'params': params, 'batch_stats': batch_stats},
                                     parallel.replicated(mesh))
  finally:
    checkpoints.close()
  source = pipeline.ArraySource(np.stack(images)[..., None], np.zeros(len(images), np.int32))
  eval_fn = steps.jit_eval_step(graphdef, mesh, config.dtype)
  probs = loop.predict_examples(eval_fn, best['params'], best['batch_stats'], source,
                                batch_size=config.data.eval_batch_size, mesh=mesh)
  _write_rows(output_csv, kept, probs, run_class_names(workdir), skipped=len(paths) - len(kept))
  return len(kept)


def run_class_names(workdir: pathlib.Path) -> list[str]:
  """The class names a run was trained with (its data_report.json)."""
  report = json.loads((workdir / 'data_report.json').read_text())
  return report['classes']


def _write_rows(output_csv, paths, probs, class_names, *, skipped: int) -> None:
  pathlib.Path(output_csv).parent.mkdir(parents=True, exist_ok=True)
  with open(output_csv, 'w', newline='') as file:
    writer = csv.writer(file)
    writer.writerow(['path', *(f'prob_{c}' for c in class_names), 'prediction'])
    for path, row in zip(paths, probs):
      writer.writerow([str(path), *(f'{p:.8f}' for p in row), class_names[int(row.argmax())]])
  logging.info('Wrote %d predictions to %s (%d unreadable files skipped).', len(paths),
               output_csv, skipped)
