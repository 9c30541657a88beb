"""train_and_evaluate: build, resume, train the phases, evaluate, write outputs."""

import dataclasses
import functools
import logging
import pathlib

import jax
import numpy as np

from mammojax import init_from, models, predicted_masks, reporting, workdir as workdir_lib
from mammojax.data import augment, datasets, image_io, patch_cache, pipeline, preprocess
from mammojax.evaluation import augment_figure, metrics as metrics_lib, predictions
from mammojax.evaluation import preprocess_figure
from mammojax.training import checkpoint, loop, losses, metric_writer, parallel, phase_loop
from mammojax.training import steps
from mammojax.training.progress import Progress


def validate_config(config) -> None:
  """Fails fast, naming the field and the valid choices."""
  spec = models.check_backbone(config.model.backbone)
  if config.data.patch_size < spec.min_size:
    raise ValueError(f'{config.model.backbone} needs inputs of at least {spec.min_size} '
                     f'pixels; set --config.data.patch_size={spec.min_size} or more.')
  augment.check_strategy(config.data.augmentation)
  if config.train.loss not in losses.LOSSES:
    raise ValueError(f'Unknown train.loss {config.train.loss!r}; valid choices: {losses.LOSSES}.')
  datasets.configured_sources(config.data)
  if config.data.crop not in patch_cache.CROP_MODES:
    raise ValueError(f'Unknown data.crop {config.data.crop!r}; valid choices: '
                     f'{patch_cache.CROP_MODES}.')
  if config.data.balance not in pipeline.BALANCE_MODES:
    raise ValueError(f'Unknown data.balance {config.data.balance!r}; valid choices: '
                     f'{pipeline.BALANCE_MODES}.')
  classes = [c for c in config.data.classes.split(',') if c.strip()]
  if classes and len(classes) != config.model.num_classes:
    raise ValueError(f'data.classes names {len(classes)} classes but model.num_classes='
                     f'{config.model.num_classes}; set --config.model.num_classes='
                     f'{len(classes)}.')
  preprocess.PreprocessConfig.from_config(config.data.preprocess)
  if models.input_mode(config.model) != 'none' and config.data.preprocess.normalize != 'none':
    raise ValueError(f'{config.model.backbone} with pretrained weights scales its input as '
                     f'ImageNet training did ({models.input_mode(config.model)!r}), from '
                     'images in [0, 1]: set --config.data.preprocess.normalize=none.')


def class_weights_for(config, train_labels: np.ndarray) -> tuple[float, ...] | None:
  """None, 'balanced' (inverse frequency, as scikit-learn), or explicit weights."""
  spec, num_classes = config.train.class_weights, config.model.num_classes
  if not spec:
    return None
  if spec == 'balanced':
    counts = np.bincount(train_labels, minlength=num_classes)
    return tuple(float(len(train_labels) / (num_classes * max(c, 1))) for c in counts)
  weights = tuple(float(w) for w in spec.split(','))
  if len(weights) != num_classes:
    raise ValueError(f'train.class_weights={spec!r} has {len(weights)} values; give '
                     f'{num_classes} (one per class) or "balanced".')
  return weights


def array_sources(data: datasets.Datasets) -> dict:
  """Grain sources per split; training keeps the lesion masks for augmentation."""
  return {name: pipeline.ArraySource(getattr(data, name).images,
                                     datasets.labels_of(getattr(data, name)),
                                     getattr(data, name).masks if name == 'train' else None)
          for name in ('train', 'val', 'test')}


def classification_hooks(config, sources, graphdef, mesh, class_weights
                         ) -> phase_loop.TaskHooks:
  """How the phase loop trains and validates a classifier."""
  eval_fn = steps.jit_eval_step(graphdef, mesh, config.dtype)

  def make_step(phase):
    return steps.jit_train_step(steps.StepConfig(
        graphdef, phase.frozen_blocks, config.seed, config.train.loss, class_weights,
        config.dtype), phase.tx, mesh)

  def train_epoch(step_fn, state, **kwargs):
    return loop.train_epoch(step_fn, state, sources['train'], data_config=config.data,
                            seed=config.seed, mesh=mesh, **kwargs)

  def validate(state, epoch):
    del epoch  # classifiers validate the same way every epoch
    probs = loop.predict_with_tta(eval_fn, state.params, state.batch_stats, sources['val'],
                                  batch_size=config.data.eval_batch_size, mesh=mesh,
                                  tta=config.data.tta)
    return metrics_lib.classification_metrics(sources['val'].labels, probs)

  return phase_loop.TaskHooks(make_step, train_epoch, validate, monitor='auc')


@dataclasses.dataclass(frozen=True)
class Run:
  """What a run is built from: its workdir, data, split model and phases."""
  workdir: pathlib.Path
  data: datasets.Datasets
  graphdef: object
  params: dict
  batch_stats: dict
  phases: list


def build_run(config, workdir, *, load_pretrained: bool = True) -> Run:
  """Checks the config, builds model and phases, then claims the workdir and data.

  Everything that can reject the config runs before the workdir is touched, so
  a typo never leaves a half-made run behind.
  """
  validate_config(config)
  # Resume order: a checkpoint in the workdir wins over model.init_from (another
  # run's encoder), over pretrained weights, over random initialisation.
  model = models.create_classifier(
      config.model, seed=config.seed,
      load_pretrained=load_pretrained and not checkpoint.has_checkpoint(workdir))
  graphdef, params, batch_stats = steps.split_model(model)
  if config.model.init_from and load_pretrained and not checkpoint.has_checkpoint(workdir):
    params, batch_stats = init_from.classifier_with_encoder(params, batch_stats, config.model,
                                                            config.model.init_from)
  phases = loop.resolve_phases(config, params, model.block_names)
  workdir = workdir_lib.prepare(workdir, config)
  data = datasets.build_datasets(config.data, seed=config.seed,
                                 transform_records=functools.partial(
                                     predicted_masks.attach_configured, config.data))
  if len(data.class_names) != config.model.num_classes:
    raise ValueError(f'The data has {len(data.class_names)} classes {list(data.class_names)} '
                     f'but model.num_classes={config.model.num_classes}; set '
                     f'--config.model.num_classes={len(data.class_names)} (or choose classes '
                     'with --config.data.classes=a,b).')
  workdir_lib.write_json(workdir / 'data_report.json', data.report)
  workdir_lib.write_json(workdir / 'preprocess.json', preprocess.PreprocessConfig.from_config(
      config.data.preprocess).to_dict())
  return Run(workdir, data, graphdef, params, batch_stats, phases)


def write_data_figures(config, run: Run, *, samples: int = 3) -> None:
  """plots/preprocess_steps.png and plots/augmentation.png, once per run (process 0)."""
  plots = run.workdir / 'plots'
  if jax.process_index() != 0 or (plots / 'augmentation.png').exists():
    return
  plots.mkdir(exist_ok=True)
  records = run.data.train.records[:samples]
  preprocess_figure.save_preprocess_figure(
      [image_io.load_grayscale(r['image_path']) for r in records],
      preprocess.PreprocessConfig.from_config(config.data.preprocess),
      plots / 'preprocess_steps.png', lateralities=[r.get('laterality') for r in records])
  train = run.data.train
  examples = [{'image': train.images[i], 'mask': train.masks[i].astype(np.float32)}
              for i in range(min(samples, len(train.images)))]
  augment_figure.save_augment_figure(examples, config.data.augmentation,
                                     plots / 'augmentation.png', seed=config.seed)


def score_split(name, probs, patch_set, class_names, workdir) -> dict:
  labels = datasets.labels_of(patch_set)
  if jax.process_index() == 0:
    predictions.write_predictions(workdir / f'predictions_{name}.csv', patch_set.records,
                                  labels, probs, list(class_names))
  return {**metrics_lib.classification_metrics(labels, probs),
          'confusion': metrics_lib.confusion(labels, probs, list(class_names))}


def restore_best(run: Run, checkpoints, mesh) -> dict:
  """{'params', 'batch_stats'} of the best checkpoint (collective on multi-host runs)."""
  return checkpoints.restore_state(checkpoints.best,
                                   {'params': run.params, 'batch_stats': run.batch_stats},
                                   parallel.replicated(mesh))


def evaluate_best(config, run: Run, progress: Progress, mesh, best: dict) -> dict:
  """Scores val and test with the best checkpoint; writes predictions and summary."""
  eval_fn = steps.jit_eval_step(run.graphdef, mesh, config.dtype)
  sources = array_sources(run.data)
  results = {}
  for name in ('val', 'test'):
    probs = loop.predict_with_tta(eval_fn, best['params'], best['batch_stats'], sources[name],
                                  batch_size=config.data.eval_batch_size, mesh=mesh,
                                  tta=config.data.tta)
    results[name] = score_split(name, probs, getattr(run.data, name), run.data.class_names,
                                run.workdir)
  summary = {
      'strategy': config.strategy, 'backbone': config.model.backbone,
      'weights': config.model.pretrained or 'random',
      'best_epoch': progress.best_epoch, 'best_val_auc': progress.best_val_metric,
      'epochs_run': progress.global_epoch, 'train_seconds': sum(progress.phase_seconds.values()),
      'phases': [{'name': p.name, 'seconds': progress.phase_seconds.get(p.name, 0.0),
                  'epochs': sum(1 for row in progress.history if row['phase'] == p.name),
                  'max_epochs': p.config.epochs, 'trainable_params': p.trainable_params,
                  'unfreeze': p.config.unfreeze, 'unfrozen_blocks': list(p.unfrozen_blocks)}
                 for p in run.phases],
      'val': results['val'], 'test': results['test'],
  }
  workdir_lib.write_json(run.workdir / 'summary.json', summary)
  logging.info('Best epoch %d: val AUC %.4f; test AUC %.4f accuracy %.4f', progress.best_epoch,
               progress.best_val_metric, results['test']['auc'], results['test']['accuracy'])
  return summary


def write_report(run: Run, best: dict) -> None:
  """report.md with the run's figures, example images and Grad-CAM (process 0)."""
  if jax.process_index() != 0:
    return
  best = jax.tree.map(np.asarray, best)  # Grad-CAM runs on process 0 alone
  reporting.write_run_report(run.workdir,
                             extra_figures=reporting.example_figures(run, best, run.workdir))


def train_and_evaluate(config, workdir: str | pathlib.Path, *, on_epoch=None) -> dict:
  """Runs (or resumes) the configured phases, then evaluates the best checkpoint.

  ``on_epoch(progress)`` runs after every epoch (see ``phase_loop.run_phases``).
  """
  run = build_run(config, workdir)
  if not config.model.pretrained:
    logging.info('Backbone %s starts from random initialisation (no pretrained weights: '
                 'set config.model.pretrained=FILE to use a weights file).',
                 config.model.backbone)
  write_data_figures(config, run)
  mesh = parallel.create_mesh()
  checkpoints = checkpoint.RunCheckpoints(run.workdir,
                                         keep_latest=config.train.keep_checkpoints,
                                         max_blocked_share=config.train.checkpoint_share)
  writer = metric_writer.MetricWriter(run.workdir)
  try:
    progress, state = phase_loop.resume(checkpoints, run.phases, run.params, run.batch_stats,
                                        mesh)
    class_weights = class_weights_for(config, datasets.labels_of(run.data.train))
    hooks = classification_hooks(config, array_sources(run.data), run.graphdef, mesh,
                                 class_weights)
    with jax.set_mesh(mesh):
      state, progress = phase_loop.run_phases(hooks, run.phases, state, progress, mesh=mesh,
                                              checkpoints=checkpoints, writer=writer,
                                              on_epoch=on_epoch)
      best = restore_best(run, checkpoints, mesh)  # every process: restoring is collective
      summary = evaluate_best(config, run, progress, mesh, best)
      write_report(run, best)
      return summary
  finally:
    writer.close()
    checkpoints.close()


def evaluate(config, workdir: str | pathlib.Path) -> dict:
  """Re-scores a finished run from its best checkpoint (``--mode=evaluate``)."""
  workdir = pathlib.Path(workdir)
  checkpoints = checkpoint.RunCheckpoints(workdir)
  try:
    meta = checkpoints.latest_meta()
    if meta is None or checkpoints.best.latest_step() is None:
      raise ValueError(f'{workdir} holds no finished checkpoint; train it first with '
                       '--mode=train.')
    run = build_run(config, workdir, load_pretrained=False)
    mesh = parallel.create_mesh()
    return evaluate_best(config, run, Progress.from_json(meta), mesh,
                         restore_best(run, checkpoints, mesh))
  finally:
    checkpoints.close()
