"""Feature extraction's classical variant: pooled CNN features → scikit-learn.

When the data fits in memory the notes fit an SVM, a logistic regression or
gradient boosting on the frozen backbone's pooled features instead of a dense
head. The run writes the same files as a network run (metrics.csv with one
row, predictions_{val,test}.csv, summary.json), so reports and ensembles
treat both alike. It trains in seconds, so a re-run simply fits again.
"""

import time

from absl import logging
from sklearn import calibration, ensemble, linear_model, pipeline, preprocessing, svm

from mammojax import train, workdir as workdir_lib
from mammojax.data import datasets
from mammojax.evaluation import metrics as metrics_lib
from mammojax.training import loop, metric_writer, parallel, steps


def make_classifier(name: str, seed: int):
  """A standardising scikit-learn pipeline for ``config.classical``."""
  estimators = {
      # Platt-scaled probabilities, as scikit-learn recommends over SVC(probability=True).
      'svm': lambda: calibration.CalibratedClassifierCV(svm.SVC(random_state=seed),
                                                        ensemble=False),
      'logistic_regression': lambda: linear_model.LogisticRegression(max_iter=2000),
      'gradient_boosting': lambda: ensemble.GradientBoostingClassifier(random_state=seed),
  }
  if name not in estimators:
    raise ValueError(f'Unknown classical classifier {name!r}; valid choices: '
                     f'{sorted(estimators)}. Set --config.classical=NAME.')
  return pipeline.make_pipeline(preprocessing.StandardScaler(), estimators[name]())


def extract_features(config, run: train.Run, mesh) -> dict:
  """Pooled backbone features of the train, val and test patches."""
  feature_fn = steps.jit_feature_step(run.graphdef, config.model.pooling, mesh)
  return {name: loop.predict_examples(feature_fn, run.params, run.batch_stats, source,
                                      batch_size=config.data.eval_batch_size, mesh=mesh)
          for name, source in train.array_sources(run.data).items()}


def fit_and_evaluate(config, workdir) -> dict:
  """Fits ``config.classical`` on frozen features and writes a run's outputs."""
  classifier = make_classifier(config.classical, config.seed)
  run = train.build_run(config, workdir)
  start = time.perf_counter()
  features = extract_features(config, run, parallel.create_mesh())
  labels = {name: datasets.labels_of(getattr(run.data, name)) for name in features}
  classifier.fit(features['train'], labels['train'])
  probs = {name: classifier.predict_proba(x) for name, x in features.items()}
  seconds = time.perf_counter() - start
  results = {name: train.score_split(name, probs[name], getattr(run.data, name),
                                     run.data.class_names, run.workdir)
             for name in ('val', 'test')}
  train_metrics = metrics_lib.classification_metrics(labels['train'], probs['train'])
  row = {'phase': config.classical, 'epoch': 1, 'epoch_in_phase': 1, 'phase_epochs': 1,
         'lr_scale': 1.0, 'images_per_second': len(labels['train']) / seconds,
         'seconds': seconds, **{f'train_{k}': v for k, v in train_metrics.items()},
         **{f'val_{k}': v for k, v in results['val'].items() if k != 'confusion'}}
  writer = metric_writer.MetricWriter(run.workdir)
  writer.write_epoch([row], eta_seconds=0.0)
  writer.close()
  summary = {
      'strategy': config.strategy, 'classifier': config.classical,
      'backbone': config.model.backbone, 'weights': config.model.pretrained or 'random',
      'best_epoch': 1, 'best_val_auc': results['val']['auc'], 'epochs_run': 1,
      'train_seconds': seconds, 'feature_size': int(features['train'].shape[1]),
      'phases': [{'name': config.classical, 'seconds': seconds, 'epochs': 1, 'max_epochs': 1,
                  'trainable_params': 0, 'unfreeze': '0', 'unfrozen_blocks': []}],
      'val': results['val'], 'test': results['test'],
  }
  workdir_lib.write_json(run.workdir / 'summary.json', summary)
  logging.info('%s on %d pooled features: val AUC %.4f, test AUC %.4f', config.classical,
               summary['feature_size'], results['val']['auc'], results['test']['auc'])
  return summary
