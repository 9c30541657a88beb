import csv
import json

import numpy as np
import pytest

from mammojax.evaluation import ensemble, predictions

CLASSES = ['benign', 'malignant']


def _complementary_probs(labels: np.ndarray, right_half: int, seed: int) -> np.ndarray:
  """Confidently right on one half of the examples, a coin flip on the other half."""
  rng = np.random.default_rng(seed)
  half = (np.arange(len(labels)) % 2) == right_half
  p_malignant = np.where(labels == 1, 0.9, 0.1) + rng.uniform(-0.05, 0.05, len(labels))
  p_malignant = np.where(half, p_malignant, rng.uniform(0.3, 0.7, len(labels)))
  return np.stack([1 - p_malignant, p_malignant], axis=1)


def _write_run(workdir, split, ids, labels, probs, *, class_names=CLASSES, order=None):
  workdir.mkdir(parents=True, exist_ok=True)
  order = np.arange(len(ids)) if order is None else order
  records = [{'id': ids[i], 'patient_id': f'P{i // 2}', 'source': 'synthetic',
              'abnormality_type': 'mass'} for i in order]
  predictions.write_predictions(workdir / f'predictions_{split}.csv', records,
                                labels[order], probs[order], class_names)


def _make_runs(tmp_path, size=80):
  """Two runs, each right on the half of the examples where the other guesses."""
  workdirs = [tmp_path / 'run_a', tmp_path / 'run_b']
  for s, split in enumerate(('val', 'test')):
    ids = [f'{split}_{i:03d}' for i in range(size)]
    labels = np.random.default_rng(10 + s).integers(0, 2, size)
    for member, workdir in enumerate(workdirs):
      probs = _complementary_probs(labels, right_half=member, seed=100 * s + member)
      order = np.random.default_rng(member).permutation(size)  # files in any row order
      _write_run(workdir, split, ids, labels, probs, order=order)
      (workdir / 'summary.json').write_text(json.dumps(
          {'backbone': f'net{member}', 'strategy': 'finetune', 'weights': 'random'}))
  return workdirs


def test_rows_are_aligned_by_id_across_runs(tmp_path):
  workdirs = _make_runs(tmp_path, size=10)
  ids, labels, probs = ensemble.load_run_predictions(workdirs, 'val')
  rows_b, labels_b, probs_b = predictions.read_predictions(workdirs[1] / 'predictions_val.csv')
  position = {row['id']: i for i, row in enumerate(rows_b)}
  assert len(probs) == 2 and probs[1].shape == (10, 2)
  for i, example_id in enumerate(ids):
    np.testing.assert_allclose(probs[1][i], probs_b[position[example_id]])
    assert labels[i] == labels_b[position[example_id]]


@pytest.mark.parametrize('method', ['stacking', 'gradient_boosting'])
def test_fitted_ensemble_beats_both_complementary_runs(tmp_path, method):
  workdirs = _make_runs(tmp_path)
  summary = ensemble.evaluate_ensemble(workdirs, tmp_path / 'ens', method=method,
                                       class_names=CLASSES)
  singles = [m['test_accuracy'] for m in summary['member_results']]
  assert max(singles) < 0.85  # each run guesses on half of the examples
  assert summary['test']['accuracy'] >= 0.95
  assert summary['test']['accuracy'] > max(singles)
  assert summary['test_vs_best_single']['accuracy']['best_single'] in singles


def test_fit_ensemble_predicts_probabilities_from_stacked_features(tmp_path):
  workdirs = _make_runs(tmp_path)
  model = ensemble.fit_ensemble(workdirs, method='stacking', seed=0)
  _, labels, probs = ensemble.load_run_predictions(workdirs, 'test')
  test_probs = model.predict_proba(ensemble.stack_features(probs))
  assert test_probs.shape == (80, 2)
  np.testing.assert_allclose(test_probs.sum(axis=1), 1.0)
  assert (test_probs.argmax(axis=1) == labels).mean() >= 0.95


def test_mean_ensemble_averages_members(tmp_path):
  workdirs = _make_runs(tmp_path, size=12)
  model = ensemble.fit_ensemble(workdirs, method='mean')
  _, _, probs = ensemble.load_run_predictions(workdirs, 'val')
  np.testing.assert_allclose(model.predict_proba(ensemble.stack_features(probs)),
                             (probs[0] + probs[1]) / 2)


def test_outputs_are_the_files_a_run_writes(tmp_path):
  workdirs = _make_runs(tmp_path)
  out = tmp_path / 'ens'
  summary = ensemble.evaluate_ensemble(workdirs, out, method='stacking', seed=3)
  first_rows, _, _ = predictions.read_predictions(workdirs[0] / 'predictions_test.csv')
  rows, labels, probs = predictions.read_predictions(out / 'predictions_test.csv')
  assert [r['id'] for r in rows] == [r['id'] for r in first_rows]
  assert [r['patient_id'] for r in rows] == [r['patient_id'] for r in first_rows]
  assert probs.shape == (80, 2) and rows[0]['source'] == 'synthetic'
  val_rows, _, _ = predictions.read_predictions(out / 'predictions_val.csv')
  assert len(val_rows) == 80
  with open(out / 'metrics.csv', newline='') as file:
    metric_rows = list(csv.DictReader(file))
  assert len(metric_rows) == 1 and metric_rows[0]['phase'] == 'stacking'
  assert float(metric_rows[0]['val_auc']) == pytest.approx(summary['val']['auc'])
  stored = json.loads((out / 'summary.json').read_text())
  assert stored['strategy'] == 'ensemble' and stored['method'] == 'stacking'
  assert stored['members'] == [str(w) for w in workdirs]
  assert stored['backbone'] == 'net0+net1'
  assert stored['val_predictions'].startswith('out-of-fold')
  assert stored['test']['confusion']['classes'] == CLASSES


def test_best_single_is_the_member_with_best_val_auc(tmp_path):
  workdirs = _make_runs(tmp_path)
  # Make run_b clearly better on validation: right on every example.
  ids, labels, _ = ensemble.load_run_predictions(workdirs, 'val')
  perfect = np.stack([1.0 - labels, labels.astype(float)], axis=1) * 0.8 + 0.1
  _write_run(workdirs[1], 'val', ids, labels, perfect)
  summary = ensemble.evaluate_ensemble(workdirs, tmp_path / 'ens', method='mean')
  best = summary['best_single']
  assert best['workdir'] == str(workdirs[1]) and best['backbone'] == 'net1'
  assert best['val_auc'] == pytest.approx(1.0)
  _, test_labels, test_probs = ensemble.load_run_predictions(workdirs, 'test')
  expected = (test_probs[1].argmax(axis=1) == test_labels).mean()
  assert best['test']['accuracy'] == pytest.approx(expected)
  assert summary['test_vs_best_single']['accuracy'] == {
      'ensemble': summary['test']['accuracy'], 'best_single': pytest.approx(expected)}


def test_missing_id_names_the_file_and_the_id(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  ids, labels, probs = ensemble.load_run_predictions(workdirs, 'val')
  _write_run(workdirs[1], 'val', ids[:5] + ['stranger'], labels, probs[1])
  with pytest.raises(ValueError, match=rf"run_b.predictions_val.csv lacks id '{ids[5]}'"):
    ensemble.load_run_predictions(workdirs, 'val')


def test_duplicate_id_names_the_file(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  ids, labels, probs = ensemble.load_run_predictions(workdirs, 'val')
  _write_run(workdirs[1], 'val', ids[:5] + [ids[0]], labels, probs[1])
  with pytest.raises(ValueError, match=rf"run_b.predictions_val.csv: id '{ids[0]}' appears twice"):
    ensemble.load_run_predictions(workdirs, 'val')
  with pytest.raises(ValueError, match=rf"run_b.predictions_val.csv: id '{ids[0]}' appears twice"):
    ensemble.load_run_predictions(workdirs[::-1], 'val')  # also in the first member's file


def test_label_disagreement_names_the_file_and_the_first_id(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  ids, labels, probs = ensemble.load_run_predictions(workdirs, 'test')
  flipped = labels.copy()
  flipped[[2, 4]] = 1 - flipped[[2, 4]]
  _write_run(workdirs[1], 'test', ids, flipped, probs[1])
  with pytest.raises(ValueError, match=rf"run_b.predictions_test.csv: the label of id '{ids[2]}'"):
    ensemble.load_run_predictions(workdirs, 'test')


def test_different_class_columns_name_the_file(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  ids, labels, probs = ensemble.load_run_predictions(workdirs, 'val')
  _write_run(workdirs[1], 'val', ids, labels, probs[1], class_names=['normal', 'abnormal'])
  with pytest.raises(ValueError, match=r"run_b.predictions_val.csv has class columns \['normal'"):
    ensemble.load_run_predictions(workdirs, 'val')


def test_missing_predictions_file_is_named(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  (workdirs[1] / 'predictions_test.csv').unlink()
  with pytest.raises(FileNotFoundError, match=r'run_b.predictions_test.csv not found'):
    ensemble.evaluate_ensemble(workdirs, tmp_path / 'ens', method='stacking')


def test_unlabelled_predictions_are_refused_with_the_file(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  path = workdirs[0] / 'predictions_val.csv'
  lines = path.read_text().splitlines()
  lines[1] = lines[1].replace(',synthetic,mass,0,', ',synthetic,mass,,').replace(
      ',synthetic,mass,1,', ',synthetic,mass,,')
  path.write_text('\n'.join(lines) + '\n')
  with pytest.raises(ValueError, match=r'Cannot read .*run_a.predictions_val.csv'):
    ensemble.load_run_predictions(workdirs, 'val')


def test_bad_arguments_are_refused(tmp_path):
  workdirs = _make_runs(tmp_path, size=10)
  with pytest.raises(ValueError, match=r"Unknown ensemble method 'vote'.*stacking"):
    ensemble.fit_ensemble(workdirs, method='vote')
  with pytest.raises(ValueError, match=r"has classes \['benign', 'malignant'\], not \['a', 'b'\]"):
    ensemble.evaluate_ensemble(workdirs, tmp_path / 'ens', method='mean', class_names=['a', 'b'])
  with pytest.raises(ValueError, match='listed twice'):
    ensemble.evaluate_ensemble([workdirs[0], workdirs[0]], tmp_path / 'ens', method='mean')
  with pytest.raises(ValueError, match='is one of its members'):
    ensemble.evaluate_ensemble(workdirs, workdirs[1], method='mean')


def test_one_class_validation_cannot_be_fitted(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  ids, _, probs = ensemble.load_run_predictions(workdirs, 'val')
  for workdir, member_probs in zip(workdirs, probs):
    _write_run(workdir, 'val', ids, np.zeros(6, int), member_probs)
  with pytest.raises(ValueError, match=r"run_a.predictions_val.csv holds one class only.*'mean'"):
    ensemble.evaluate_ensemble(workdirs, tmp_path / 'ens', method='stacking')


def test_few_validation_examples_fall_back_to_in_sample_and_say_so(tmp_path):
  workdirs = _make_runs(tmp_path, size=6)
  ids, _, probs = ensemble.load_run_predictions(workdirs, 'val')
  for workdir, member_probs in zip(workdirs, probs):
    _write_run(workdir, 'val', ids, np.array([0, 0, 0, 0, 0, 1]), member_probs)
  summary = ensemble.evaluate_ensemble(workdirs, tmp_path / 'ens', method='stacking')
  assert summary['val_predictions'].startswith('in-sample')


def test_class_missing_from_validation_keeps_every_probability_column(tmp_path):
  classes = ['normal', 'benign', 'malignant']
  workdirs = [tmp_path / 'run_a', tmp_path / 'run_b']
  rng = np.random.default_rng(0)
  for split, labels in (('val', np.arange(30) % 2), ('test', np.arange(30) % 3)):
    ids = [f'{split}_{i}' for i in range(30)]
    for workdir in workdirs:
      probs = rng.dirichlet(np.ones(3), 30) * 0.5 + np.eye(3)[labels] * 0.5
      _write_run(workdir, split, ids, labels, probs, class_names=classes)
  summary = ensemble.evaluate_ensemble(workdirs, tmp_path / 'ens', method='stacking')
  _, _, probs = predictions.read_predictions(tmp_path / 'ens' / 'predictions_test.csv')
  assert probs.shape == (30, 3)
  assert np.all(probs[:, 2] == 0)  # never seen in validation, so never predicted
  assert summary['test']['confusion']['classes'] == classes
  for workdir in workdirs:
    _write_run(workdir, 'val', [f'val_{i}' for i in range(30)], np.zeros(30, int),
               rng.dirichlet(np.ones(3), 30), class_names=classes)
  with pytest.raises(ValueError, match='run_a.predictions_val.csv holds one class only'):
    ensemble.fit_ensemble(workdirs, method='gradient_boosting')
