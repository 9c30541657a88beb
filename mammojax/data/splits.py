"""Leakage-free splits: grouped by patient, stratified by label × source.

A patient's records (and so every lesion and patch of theirs) always land on
one side. Splits are reproducible from the seed. Splits a dataset fixes (the
CBIS-DDSM test CSVs, a chest_xray ``test/`` folder) are kept as given; only
what it leaves open is split here.
"""

import numpy as np
from sklearn import model_selection


def _groups_and_strata(records: list[dict]) -> tuple[list[str], list[str]]:
  groups = [f'{r["source"]}/{r["patient_id"]}' for r in records]
  strata = [f'{r["source"]}/{r["label"]}' for r in records]
  return groups, strata


def _folds(records: list[dict], n_splits: int, seed: int, what: str):
  """(train_index, held_index) pairs of StratifiedGroupKFold over patients."""
  groups, strata = _groups_and_strata(records)
  if len(set(groups)) < n_splits:
    raise ValueError(f'Only {len(set(groups))} patients: too few for {what}; add data or '
                     'change the fraction.')
  folds = model_selection.StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                               random_state=seed)
  return list(folds.split(np.zeros(len(records)), strata, groups))


def _pick(records: list[dict], index) -> list[dict]:
  return [records[i] for i in index]


def hold_out(records: list[dict], *, fraction: float, seed: int, what: str = 'data.val_fraction'
             ) -> tuple[list[dict], list[dict]]:
  """(kept, held) with about ``fraction`` of the patients held out.

  Uses scikit-learn's StratifiedGroupKFold with ``round(1 / fraction)`` folds
  and holds out the first fold, so label × source proportions are kept as
  far as whole patients allow.
  """
  if not 0 < fraction < 1:
    raise ValueError(f'{what} must be in (0, 1), got {fraction}.')
  n_splits = max(2, round(1 / fraction))
  kept, held = _folds(records, n_splits, seed, f'{what}={fraction}')[0]
  return _pick(records, kept), _pick(records, held)


def split_train_val(records: list[dict], *, val_fraction: float, seed: int
                    ) -> tuple[list[dict], list[dict]]:
  """Splits records into (train, val) so that no patient is on both sides."""
  return hold_out(records, fraction=val_fraction, seed=seed, what='data.val_fraction')


def kfold_train_val(records: list[dict], *, folds: int, fold: int, seed: int
                    ) -> tuple[list[dict], list[dict]]:
  """Fold ``fold`` of a patient-grouped, stratified ``folds``-fold cross-validation."""
  if folds < 2 or not 0 <= fold < folds:
    raise ValueError(f'data.folds={folds}, data.fold={fold}: need folds ≥ 2 and '
                     f'0 ≤ fold < folds.')
  train, val = _folds(records, folds, seed, f'data.folds={folds}')[fold]
  return _pick(records, train), _pick(records, val)


def assign_splits(records: list[dict], *, val_fraction: float, test_fraction: float,
                  seed: int, folds: int = 0, fold: int = 0
                  ) -> tuple[dict[str, list[dict]], list[dict]]:
  """({'train', 'val', 'test'}, skipped): fixed splits kept, the rest split by patient.

  Records whose ``split`` is '' are first split into test (``test_fraction``)
  and the rest; then everything not in val or test is split into train and
  val (``val_fraction``, or fold ``fold`` of ``folds``-fold cross-validation
  when ``folds`` ≥ 2). A patient never appears in two splits: where the
  dataset's own split files put one patient on two sides, the records on the
  training side are skipped (and reported) rather than leak.
  """
  fixed = {name: [r for r in records if r['split'] == name] for name in ('train', 'val', 'test')}
  unsplit = [r for r in records if not r['split']]
  if unsplit and test_fraction > 0:
    unsplit, held = hold_out(unsplit, fraction=test_fraction, seed=seed,
                             what='data.test_fraction')
    fixed['test'] += held
  fixed, skipped = remove_leaking_patients(fixed)
  pool = fixed['train'] + unsplit
  if folds >= 2:
    train, val = kfold_train_val(pool, folds=folds, fold=fold, seed=seed)
  elif fixed['val'] and not unsplit:
    train, val = pool, []  # the dataset gives its own validation split
  else:
    train, val = split_train_val(pool, val_fraction=val_fraction, seed=seed)
  return {'train': train, 'val': fixed['val'] + val, 'test': fixed['test']}, skipped


def _patient_key(record: dict) -> str:
  return f'{record["source"]}/{record["patient_id"]}'


def remove_leaking_patients(split_records: dict[str, list[dict]]
                            ) -> tuple[dict[str, list[dict]], list[dict]]:
  """Drops train/val records of patients that are also in a later split.

  Order of precedence: test, then val, then train — evaluation sets are
  never shrunk. Returns the cleaned splits and one skip entry per record.
  """
  claimed, cleaned, skipped = {}, {}, []
  for name in ('test', 'val', 'train'):
    kept = []
    for record in split_records.get(name, []):
      owner = claimed.setdefault(_patient_key(record), name)
      if owner == name:
        kept.append(record)
      else:
        skipped.append({'id': record['id'], 'file': record['image_path'],
                        'reason': f'patient {record["patient_id"]} is also in the {owner} '
                                  f'split; its {name} record is left out to avoid leakage'})
    cleaned[name] = kept
  return cleaned, skipped
