import numpy as np
import pytest

from mammojax.evaluation import metrics, predictions


def test_binary_metrics_against_hand_computed_values():
  labels = np.array([0, 0, 1, 1])
  probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]])
  result = metrics.classification_metrics(labels, probs)
  assert result['accuracy'] == pytest.approx(0.75)
  assert result['precision'] == pytest.approx(2 / 3)
  assert result['recall'] == pytest.approx(1.0)
  assert result['f1'] == pytest.approx(0.8)
  assert result['auc'] == pytest.approx(1.0)  # every positive outranks every negative
  expected_loss = -np.mean(np.log([0.9, 0.4, 0.65, 0.8]))
  assert result['loss'] == pytest.approx(expected_loss, rel=1e-6)


def test_auc_is_nan_when_one_class_only():
  assert np.isnan(metrics.roc_auc(np.array([1, 1]), np.array([[0.2, 0.8], [0.3, 0.7]])))


def test_multiclass_auc_is_macro_one_vs_rest():
  labels = np.array([0, 1, 2, 0, 1, 2])
  probs = np.eye(3)[labels] * 0.7 + 0.1
  assert metrics.roc_auc(labels, probs) == pytest.approx(1.0)


def test_confusion_counts_and_row_percent():
  labels = np.array([0, 0, 0, 1])
  probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
  result = metrics.confusion(labels, probs, ['benign', 'malignant'])
  assert result['counts'] == [[2, 1], [0, 1]]
  assert result['row_percent'] == [[66.67, 33.33], [0.0, 100.0]]
  assert 'malignant' in result['report']


def test_predictions_file_round_trip(tmp_path):
  records = [{'id': 'a', 'patient_id': 'P1', 'source': 's'}, {'id': 'b', 'patient_id': 'P2'}]
  probs = np.array([[0.25, 0.75], [0.6, 0.4]])
  path = tmp_path / 'predictions.csv'
  predictions.write_predictions(path, records, [1, 0], probs, ['benign', 'malignant'])
  rows, labels, read_probs = predictions.read_predictions(path)
  assert [r['id'] for r in rows] == ['a', 'b']
  assert [r['prediction'] for r in rows] == ['malignant', 'benign']
  assert labels.tolist() == [1, 0]
  np.testing.assert_allclose(read_probs, probs)
