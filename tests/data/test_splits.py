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


def unsplit_records(num_patients=60, lesions=lambda p: 1):
  """Records of an unsplit dataset (MIAS-like): split '' everywhere."""
  return [{**record, 'split': '', 'image_path': f'/{record["id"]}.png'}
          for record in make_records(num_patients)
          if int(record['id'].split('_')[1]) < lesions(int(record['patient_id'][1:]))]


def _strata(records):
  return collections.Counter((r['source'], r['label']) for r in records)


def test_unsplit_dataset_gets_train_val_test_without_shared_patients():
  records = unsplit_records(60, lesions=lambda p: 1 + p % 3)
  split, skipped = splits.assign_splits(records, val_fraction=0.2, test_fraction=0.2, seed=0)
  assert not skipped
  assert sum(len(v) for v in split.values()) == len(records)
  patients = {name: {r['patient_id'] for r in recs} for name, recs in split.items()}
  assert not patients['train'] & patients['val']
  assert not patients['train'] & patients['test']
  assert not patients['val'] & patients['test']


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_label_source_proportions_hold_within_one_sample_per_stratum(seed):
  records = unsplit_records(80)  # one lesion per patient: strata can be exact
  kept, held = splits.hold_out(records, fraction=0.25, seed=seed)
  total, in_held = _strata(records), _strata(held)
  for stratum, count in total.items():
    assert abs(in_held[stratum] - count * 0.25) <= 1, (stratum, in_held, total)


def test_fixed_splits_are_kept_and_leaking_patients_reported():
  records = [{**r, 'split': 'train', 'image_path': '/x.png'} for r in make_records(30)]
  test = [{'id': 't0', 'patient_id': 'P0', 'source': 'b', 'label': 0, 'split': 'test',
           'image_path': '/t0.png'}]
  split, skipped = splits.assign_splits(records + test, val_fraction=0.2, test_fraction=0.2,
                                        seed=0)
  assert [r['id'] for r in split['test']] == ['t0']
  leaked = [r['id'] for r in records if r['patient_id'] == 'P0']
  assert sorted(s['id'] for s in skipped) == sorted(leaked)
  assert all('also in the test split' in s['reason'] for s in skipped)
  assert not {r['patient_id'] for r in split['train'] + split['val']} & {'P0'}


def test_kfold_folds_partition_the_pool_by_patient():
  records = make_records(40)
  seen = []
  for fold in range(5):
    train, val = splits.kfold_train_val(records, folds=5, fold=fold, seed=0)
    assert not {r['patient_id'] for r in train} & {r['patient_id'] for r in val}
    seen += [r['id'] for r in val]
  assert sorted(seen) == sorted(r['id'] for r in records)  # each record validated once


def test_bad_fold_is_explained():
  with pytest.raises(ValueError, match='data.fold'):
    splits.kfold_train_val(make_records(), folds=5, fold=5, seed=0)
