import collections

import pytest

from mammojax.data import splits


def make_records(num_patients=40):
  records = []
  for patient in range(num_patients):
    for lesion in range(1 + patient % 3):
      records.append({'id': f'{patient}_{lesion}', 'patient_id': f'P{patient}',
                      'source': 'a' if patient % 4 else 'b', 'label': patient % 2})
  return records


def test_no_patient_on_both_sides_and_strata_kept():
  records = make_records()
  train, val = splits.split_train_val(records, val_fraction=0.2, seed=0)
  assert len(train) + len(val) == len(records)
  assert not {r['patient_id'] for r in train} & {r['patient_id'] for r in val}
  assert 0.1 < len(val) / len(records) < 0.3
  strata = collections.Counter((r['source'], r['label']) for r in val)
  assert len(strata) == 3  # every (source, label) pair present in the data is represented


def test_split_is_reproducible_from_the_seed():
  records = make_records()
  first = splits.split_train_val(records, val_fraction=0.2, seed=3)[1]
  again = splits.split_train_val(records, val_fraction=0.2, seed=3)[1]
  other = splits.split_train_val(records, val_fraction=0.2, seed=4)[1]
  assert [r['id'] for r in first] == [r['id'] for r in again]
  assert [r['id'] for r in first] != [r['id'] for r in other]


def test_too_few_patients_is_explained():
  with pytest.raises(ValueError, match='too few'):
    splits.split_train_val(make_records(3), val_fraction=0.2, seed=0)
