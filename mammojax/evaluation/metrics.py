"""Classification metrics from labels and class probabilities (scikit-learn)."""

import numpy as np
from sklearn import metrics as skm


def roc_auc(labels: np.ndarray, probs: np.ndarray) -> float:
  """Binary AUC on the positive class, or macro one-vs-rest AUC; NaN when undefined."""
  present = np.unique(labels)
  if len(present) < 2:
    return float('nan')
  if probs.shape[1] == 2:
    return float(skm.roc_auc_score(labels, probs[:, 1]))
  if len(present) < probs.shape[1]:
    return float('nan')
  return float(skm.roc_auc_score(labels, probs, multi_class='ovr', average='macro'))


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
  """Loss, accuracy, precision, recall, F1 (binary: positive class; else macro), AUC."""
  labels = np.asarray(labels)
  probs = np.asarray(probs, np.float64)
  probs = probs / probs.sum(axis=1, keepdims=True)  # float32 softmax sums to 1 ± 1e-7
  num_classes = probs.shape[1]
  predicted = probs.argmax(axis=1)
  average = 'binary' if num_classes == 2 else 'macro'
  precision, recall, f1, _ = skm.precision_recall_fscore_support(
      labels, predicted, average=average, labels=np.arange(num_classes) if average == 'macro' else None,
      zero_division=0)
  return {
      'loss': float(skm.log_loss(labels, probs, labels=np.arange(num_classes))),
      'accuracy': float(skm.accuracy_score(labels, predicted)),
      'precision': float(precision),
      'recall': float(recall),
      'f1': float(f1),
      'auc': roc_auc(labels, probs),
  }


def confusion(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
  """Confusion matrix in counts and row-normalised %, and the text report."""
  predicted = np.asarray(probs).argmax(axis=1)
  indices = np.arange(len(class_names))
  counts = skm.confusion_matrix(labels, predicted, labels=indices)
  rows = counts.sum(axis=1, keepdims=True)
  percent = np.divide(100.0 * counts, rows, out=np.zeros(counts.shape), where=rows > 0)
  report = skm.classification_report(labels, predicted, labels=indices,
                                     target_names=class_names, zero_division=0)
  return {'classes': class_names, 'counts': counts.tolist(),
          'row_percent': np.round(percent, 2).tolist(), 'report': report}
