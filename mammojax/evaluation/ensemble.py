"""Ensembles of finished runs, read from their prediction files (never live objects).

Each member is a classification workdir holding ``predictions_val.csv`` and
``predictions_test.csv``. The ensemble's features are the members' class
probabilities side by side; a stacking (logistic regression) or gradient
boosting model is fitted on the VALIDATION predictions — the only labelled
predictions the members did not train on — and scored on test. Its own
validation predictions are out-of-fold (cross-validated), so its validation
metrics stay comparable with the members'. The ensemble writes the same files
as a run, so reports and plots treat it like any other run.
"""

import csv
import json
import os
import pathlib
import time
from typing import NamedTuple

import numpy as np
from sklearn import ensemble as sk_ensemble
from sklearn import linear_model, model_selection

from mammojax.evaluation import metrics as metrics_lib
from mammojax.evaluation import predictions as predictions_lib

METHODS = ('stacking', 'gradient_boosting', 'mean')
SPLITS = ('val', 'test')
MAX_FOLDS = 5
SAME_SPLIT_HINT = ('Ensemble members must be scored on the same examples: train them with the '
                   'same --config.seed and data settings (the split derives from them).')


class SplitPredictions(NamedTuple):
  """One split of every member, rows aligned on the first member's order."""
  ids: list[str]
  labels: np.ndarray
  probs: list[np.ndarray]  # one (examples, classes) array per member
  rows: list[dict]  # the first member's CSV rows (metadata columns)
  class_names: list[str]


def _read_member(workdir, split: str) -> tuple[pathlib.Path, list[dict], np.ndarray, np.ndarray]:
  path = pathlib.Path(workdir) / f'predictions_{split}.csv'
  if not path.is_file():
    raise FileNotFoundError(f'{path} not found: ensemble members must be finished '
                            'classification runs (predictions are written after evaluation).')
  try:
    rows, labels, probs = predictions_lib.read_predictions(path)
  except (KeyError, ValueError) as error:
    raise ValueError(f'Cannot read {path} as a predictions file with labels: {error}') from error
  return path, rows, labels, probs


def _class_names(rows: list[dict]) -> list[str]:
  return [column[len('prob_'):] for column in rows[0] if column.startswith('prob_')]


def _index_ids(path: pathlib.Path, ids: list[str]) -> dict[str, int]:
  index = {}
  for i, example_id in enumerate(ids):
    if example_id in index:
      raise ValueError(f'{path}: id {example_id!r} appears twice; ids must be unique.')
    index[example_id] = i
  return index


def _row_order(path: pathlib.Path, ids: list[str], reference: list[str]) -> np.ndarray:
  """Indices that put ``ids`` (one member's file) in the order of ``reference``."""
  index = _index_ids(path, ids)
  missing = next((i for i in reference if i not in index), None)
  known = set(reference)
  extra = next((i for i in ids if i not in known), None)
  if missing is not None or extra is not None:
    offending = (f'lacks id {missing!r} of the first member' if missing is not None
                 else f'has id {extra!r} that the first member lacks')
    raise ValueError(f'{path} {offending}. {SAME_SPLIT_HINT}')
  return np.array([index[i] for i in reference])


def read_split(workdirs, split: str) -> SplitPredictions:
  """Every member's ``predictions_<split>.csv``, aligned by id and checked to agree."""
  workdirs = [pathlib.Path(w) for w in workdirs]
  if not workdirs:
    raise ValueError('An ensemble needs at least one member workdir.')
  first_path, rows, labels, first_probs = _read_member(workdirs[0], split)
  ids, class_names = [r['id'] for r in rows], _class_names(rows)
  _index_ids(first_path, ids)
  probs = [first_probs]
  for workdir in workdirs[1:]:
    path, member_rows, member_labels, member_probs = _read_member(workdir, split)
    if _class_names(member_rows) != class_names:
      raise ValueError(f'{path} has class columns {_class_names(member_rows)} but '
                       f'{first_path} has {class_names}; members must predict the same classes.')
    order = _row_order(path, [r['id'] for r in member_rows], ids)
    disagree = np.flatnonzero(member_labels[order] != labels)
    if disagree.size:
      raise ValueError(f'{path}: the label of id {ids[disagree[0]]!r} differs from '
                       f'{first_path}. {SAME_SPLIT_HINT}')
    probs.append(member_probs[order])
  return SplitPredictions(ids, labels, probs, rows, class_names)


def load_run_predictions(workdirs, split: str) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
  """(ids, labels, probs per run) of one split, rows aligned by id across runs.

  Raises ValueError naming the file and the first offending id when the runs
  do not hold the same ids, labels and class columns.
  """
  found = read_split(workdirs, split)
  return found.ids, found.labels, found.probs


class MeanEnsemble:
  """Averages the members' probabilities; nothing to fit."""

  def __init__(self, num_classes: int):
    self.num_classes = num_classes

  def fit(self, features: np.ndarray, labels: np.ndarray) -> 'MeanEnsemble':
    del features, labels  # the mean has no parameters
    return self

  def predict_proba(self, features: np.ndarray) -> np.ndarray:
    """Mean over members of the (examples, members × classes) feature blocks."""
    features = np.asarray(features, np.float64)
    return features.reshape(len(features), -1, self.num_classes).mean(axis=1)


def make_ensemble(method: str, *, num_classes: int, seed: int = 0):
  """An unfitted combiner with ``fit`` and ``predict_proba``."""
  makers = {
      'stacking': lambda: linear_model.LogisticRegression(max_iter=2000),
      'gradient_boosting': lambda: sk_ensemble.GradientBoostingClassifier(random_state=seed),
      'mean': lambda: MeanEnsemble(num_classes),
  }
  if method not in makers:
    raise ValueError(f'Unknown ensemble method {method!r}; valid choices: {list(METHODS)}.')
  return makers[method]()


def stack_features(probs: list[np.ndarray]) -> np.ndarray:
  """The members' class probabilities side by side: (examples, members × classes)."""
  return np.concatenate(probs, axis=1)


def fit_ensemble(workdirs, method: str = 'stacking', seed: int = 0):
  """Fits ``method`` on the members' validation predictions; returns the fitted combiner.

  Its ``predict_proba`` takes ``stack_features`` of the members' probabilities
  (in the order of ``workdirs``). A class absent from validation gets no
  column from scikit-learn's models (see their ``classes_``).
  """
  val = read_split(workdirs, 'val')
  _check_fittable(method, val, workdirs)
  model = make_ensemble(method, num_classes=len(val.class_names), seed=seed)
  return model.fit(stack_features(val.probs), val.labels)


def _full_proba(model, features: np.ndarray, num_classes: int) -> np.ndarray:
  """``predict_proba`` with a column for every class, also those the fit never saw."""
  return _pad_columns(model.predict_proba(features), getattr(model, 'classes_', None),
                      num_classes)


def _pad_columns(probs: np.ndarray, classes, num_classes: int) -> np.ndarray:
  if classes is None or len(classes) == num_classes:
    return probs
  full = np.zeros((len(probs), num_classes))
  full[:, np.asarray(classes, int)] = probs
  return full


def predict_out_of_fold(method: str, features: np.ndarray, labels: np.ndarray, *,
                        num_classes: int, seed: int) -> tuple[np.ndarray, str]:
  """Validation probabilities of models that did not see the row, and how they were made.

  Scoring the ensemble on the rows it was fitted on would flatter it against
  its members; with fewer than two examples of a class the fit is in-sample,
  and the returned description says so.
  """
  model = make_ensemble(method, num_classes=num_classes, seed=seed)
  if method == 'mean':
    return model.predict_proba(features), 'no fit (mean of the members)'
  present, counts = np.unique(labels, return_counts=True)
  folds = min(MAX_FOLDS, int(counts.min()))  # stratified: every class in every fold
  if folds < 2:
    return _full_proba(model.fit(features, labels), features, num_classes), (
        'in-sample (fewer than two validation examples of a class)')
  splitter = model_selection.StratifiedKFold(folds, shuffle=True, random_state=seed)
  probs = model_selection.cross_val_predict(model, features, labels, cv=splitter,
                                            method='predict_proba')
  return _pad_columns(probs, present, num_classes), f'out-of-fold ({folds}-fold)'


def _check_fittable(method: str, val: SplitPredictions, workdirs) -> None:
  if method != 'mean' and len(np.unique(val.labels)) < 2:
    raise ValueError(f'{pathlib.Path(workdirs[0]) / "predictions_val.csv"} holds one class '
                     f'only; a fitted ensemble needs two. Use method=\'mean\' or a larger '
                     'validation split.')


def _check_members(workdirs, out_dir: pathlib.Path) -> list[pathlib.Path]:
  workdirs = [pathlib.Path(w) for w in workdirs]
  resolved = [w.resolve() for w in workdirs]
  duplicate = next((w for i, w in enumerate(workdirs) if resolved[i] in resolved[:i]), None)
  if duplicate is not None:
    raise ValueError(f'Ensemble member {duplicate} is listed twice; give each run once.')
  if out_dir.resolve() in resolved:
    raise ValueError(f'The ensemble output {out_dir} is one of its members; its files would '
                     'be overwritten. Give the ensemble its own folder.')
  return workdirs


def _check_class_names(found: list[str], class_names, workdir: pathlib.Path) -> list[str]:
  if class_names is not None and list(class_names) != found:
    raise ValueError(f'{workdir / "predictions_val.csv"} has classes {found}, not '
                     f'{list(class_names)}; pass the class names the members were trained on.')
  return found


def _score(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
  return {**metrics_lib.classification_metrics(labels, probs),
          'confusion': metrics_lib.confusion(labels, probs, class_names)}


def _read_summary(workdir: pathlib.Path) -> dict:
  path = workdir / 'summary.json'
  if not path.is_file():
    return {}  # the predictions are all an ensemble needs; the summary only names the run
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as error:
    raise ValueError(f'{path} is not valid JSON ({error}); re-run the evaluation of that '
                     'member or delete the file.') from error


def score_members(workdirs, splits: dict, class_names: list[str]) -> list[dict]:
  """Each member's val and test metrics, recomputed from its aligned predictions."""
  members = []
  for i, workdir in enumerate(workdirs):
    summary = _read_summary(workdir)
    members.append({
        'workdir': str(workdir),
        **{key: summary.get(key, '') for key in ('backbone', 'strategy', 'weights')},
        **{name: _score(split.labels, split.probs[i], class_names)
           for name, split in splits.items()}})
  return members


def pick_best_single(members: list[dict]) -> dict:
  """The member with the best validation AUC (undefined AUCs rank last; ties: first)."""
  def val_auc(member):
    auc = member['val']['auc']
    return -np.inf if np.isnan(auc) else auc
  return max(members, key=val_auc)


def _write_metrics_csv(path: pathlib.Path, method: str, seconds: float, examples: int,
                       train: dict, val: dict) -> None:
  # The same columns as a network run's epoch rows, so plots read both alike;
  # 'train' is the fit on validation scored in-sample.
  row = {'phase': method, 'epoch': 1, 'epoch_in_phase': 1, 'phase_epochs': 1, 'lr_scale': 1.0,
         'images_per_second': examples / max(seconds, 1e-9), 'seconds': seconds,
         **{f'train_{k}': v for k, v in train.items() if k != 'confusion'},
         **{f'val_{k}': v for k, v in val.items() if k != 'confusion'}}
  with open(path, 'w', newline='') as file:
    writer = csv.DictWriter(file, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)


def _write_json(path: pathlib.Path, value: dict) -> None:
  scratch = path.with_suffix(path.suffix + '.tmp')  # atomic: never a half-written summary
  scratch.write_text(json.dumps(value, indent=2, sort_keys=True, default=float))
  os.replace(scratch, path)


def _joined(members: list[dict], key: str) -> str:
  return '+'.join(dict.fromkeys(str(m[key]) for m in members if m[key] != '')) or 'ensemble'


def build_summary(method: str, seed: int, seconds: float, how_val: str, results: dict,
                  members: list[dict]) -> dict:
  """summary.json of an ensemble: a run's keys plus its members and the best single one."""
  best = pick_best_single(members)
  compared = ('accuracy', 'precision', 'recall', 'f1', 'auc', 'loss')
  return {
      'strategy': 'ensemble', 'method': method, 'seed': seed,
      'members': [m['workdir'] for m in members],
      'backbone': _joined(members, 'backbone'), 'weights': _joined(members, 'weights'),
      'best_epoch': 1, 'best_val_auc': results['val']['auc'], 'epochs_run': 1,
      'train_seconds': seconds, 'val_predictions': how_val,
      'phases': [{'name': method, 'seconds': seconds, 'epochs': 1, 'max_epochs': 1,
                  'trainable_params': 0, 'unfreeze': '0', 'unfrozen_blocks': []}],
      'val': results['val'], 'test': results['test'],
      'member_results': [{'workdir': m['workdir'], 'backbone': m['backbone'],
                          'val_auc': m['val']['auc'], 'test_accuracy': m['test']['accuracy'],
                          'test_auc': m['test']['auc'], 'test_f1': m['test']['f1']}
                         for m in members],
      'best_single': {**best, 'val_auc': best['val']['auc']},
      'test_vs_best_single': {k: {'ensemble': results['test'][k], 'best_single': best['test'][k]}
                              for k in compared},
  }


def evaluate_ensemble(workdirs, out_dir, *, method: str, seed: int = 0,
                      class_names=None) -> dict:
  """Fits ``method`` on the members' validation predictions and writes a run's files.

  ``out_dir`` receives predictions_val.csv (out-of-fold), predictions_test.csv,
  metrics.csv (one row) and summary.json, which is returned. ``class_names``
  (optional) must match the members' ``prob_<class>`` columns.
  """
  out_dir = pathlib.Path(out_dir)
  workdirs = _check_members(workdirs, out_dir)
  splits = {name: read_split(workdirs, name) for name in SPLITS}
  val, test = splits['val'], splits['test']
  class_names = _check_class_names(val.class_names, class_names, workdirs[0])
  _check_class_names(test.class_names, class_names, workdirs[0])
  _check_fittable(method, val, workdirs)
  start = time.perf_counter()
  features = {name: stack_features(split.probs) for name, split in splits.items()}
  model = make_ensemble(method, num_classes=len(class_names), seed=seed)
  model.fit(features['val'], val.labels)
  probs = {'test': _full_proba(model, features['test'], len(class_names))}
  probs['val'], how_val = predict_out_of_fold(method, features['val'], val.labels,
                                              num_classes=len(class_names), seed=seed)
  seconds = time.perf_counter() - start
  out_dir.mkdir(parents=True, exist_ok=True)
  results = {}
  for name, split in splits.items():
    predictions_lib.write_predictions(out_dir / f'predictions_{name}.csv', split.rows,
                                      split.labels, probs[name], class_names)
    results[name] = _score(split.labels, probs[name], class_names)
  in_sample = metrics_lib.classification_metrics(
      val.labels, _full_proba(model, features['val'], len(class_names)))
  _write_metrics_csv(out_dir / 'metrics.csv', method, seconds, len(val.labels), in_sample,
                     results['val'])
  members = score_members(workdirs, splits, class_names)
  summary = build_summary(method, seed, seconds, how_val, results, members)
  _write_json(out_dir / 'summary.json', summary)
  return summary
