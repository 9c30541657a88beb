"""Per-image prediction files: one CSV row per example, read back by later steps."""

import csv
import os

import numpy as np

METADATA_FIELDS = ('id', 'patient_id', 'source', 'abnormality_type')


def write_predictions(path: str | os.PathLike, records: list[dict], labels, probs,
                      class_names: list[str]) -> None:
  """Writes id, metadata, label, one probability column per class, prediction."""
  probs = np.asarray(probs)
  with open(path, 'w', newline='') as file:
    writer = csv.writer(file)
    writer.writerow([*METADATA_FIELDS, 'label',
                     *(f'prob_{name}' for name in class_names), 'prediction'])
    for record, label, row in zip(records, labels, probs):
      writer.writerow([*(record.get(field, '') for field in METADATA_FIELDS),
                       int(label) if label is not None else '',
                       *(f'{p:.8f}' for p in row), class_names[int(row.argmax())]])


def read_predictions(path: str | os.PathLike) -> tuple[list[dict], np.ndarray, np.ndarray]:
  """(rows, labels, probs) from a file written by ``write_predictions``."""
  with open(path, newline='') as file:
    rows = list(csv.DictReader(file))
  if not rows:
    raise ValueError(f'{path} holds no predictions.')
  prob_columns = [c for c in rows[0] if c.startswith('prob_')]
  labels = np.array([int(r['label']) for r in rows])
  probs = np.array([[float(r[c]) for c in prob_columns] for r in rows])
  return rows, labels, probs
