"""Leakage-free splits: grouped by patient, stratified by label × source."""

import numpy as np
from sklearn import model_selection


def split_train_val(records: list[dict], *, val_fraction: float, seed: int
                    ) -> tuple[list[dict], list[dict]]:
  """Splits records so that no patient is on both sides.

  Uses scikit-learn's StratifiedGroupKFold with ``round(1 / val_fraction)``
  folds and keeps the first fold for validation, so label × source
  proportions are kept as far as whole patients allow.
  """
  if not 0 < val_fraction < 1:
    raise ValueError(f'data.val_fraction must be in (0, 1), got {val_fraction}.')
  n_splits = max(2, round(1 / val_fraction))
  groups = [f'{r["source"]}/{r["patient_id"]}' for r in records]
  if len(set(groups)) < n_splits:
    raise ValueError(f'Only {len(set(groups))} patients: too few for '
                     f'val_fraction={val_fraction}; add data or raise val_fraction.')
  strata = [f'{r["source"]}/{r["label"]}' for r in records]
  folds = model_selection.StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                               random_state=seed)
  train_index, val_index = next(folds.split(np.zeros(len(records)), strata, groups))
  return [records[i] for i in train_index], [records[i] for i in val_index]
