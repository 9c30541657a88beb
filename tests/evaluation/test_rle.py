import csv

import numpy as np
import pytest

from mammojax.evaluation.rle import SubmissionWriter, rle_decode, rle_encode, write_submission

# Row 0 full, plus the right pixel of row 1: different codes in the two orders.
MASK_3X3 = np.array([[1, 1, 1],
                     [0, 0, 1],
                     [0, 0, 0]], np.uint8)


def test_hand_computed_3x3_in_both_orders():
  # Column-major: column 0 = 1,0,0; column 1 = 1,0,0; column 2 = 1,1,0 -> pixels 1, 4, 7, 8.
  assert rle_encode(MASK_3X3) == '1 1 4 1 7 2'
  assert rle_encode(MASK_3X3, order='F') == '1 1 4 1 7 2'
  # Row-major: 1 1 1 0 0 1 0 0 0 -> pixels 1-3 and 6.
  assert rle_encode(MASK_3X3, order='C') == '1 3 6 1'
  np.testing.assert_array_equal(rle_decode('1 1 4 1 7 2', (3, 3)), MASK_3X3)
  np.testing.assert_array_equal(rle_decode('1 3 6 1', (3, 3), order='C'), MASK_3X3)


def test_empty_and_full_masks():
  assert rle_encode(np.zeros((3, 3), np.uint8)) == ''
  assert rle_encode(np.ones((3, 3), np.uint8)) == '1 9'
  np.testing.assert_array_equal(rle_decode('', (2, 5)), np.zeros((2, 5), np.uint8))


@pytest.mark.parametrize('order', ['F', 'C'])
def test_single_pixels_at_corners(order):
  height, width = 5, 7
  expected = {  # (row, col) -> 1-based pixel number
      (0, 0): 1,
      (height - 1, 0): height if order == 'F' else (height - 1) * width + 1,
      (0, width - 1): (width - 1) * height + 1 if order == 'F' else width,
      (height - 1, width - 1): height * width,
  }
  for (row, col), number in expected.items():
    mask = np.zeros((height, width), np.uint8)
    mask[row, col] = 1
    assert rle_encode(mask, order) == f'{number} 1'
    np.testing.assert_array_equal(rle_decode(f'{number} 1', (height, width), order), mask)


@pytest.mark.parametrize('order', ['F', 'C'])
@pytest.mark.parametrize('shape', [(1, 1), (1, 9), (9, 1), (5, 7), (48, 64), (33, 17)])
@pytest.mark.parametrize('density', [0.0, 0.1, 0.5, 1.0])
def test_round_trip_on_random_masks(order, shape, density):
  rng = np.random.default_rng([*shape, int(density * 10), ord(order)])
  mask = (rng.random(shape) < density).astype(np.uint8)
  text = rle_encode(mask, order)
  decoded = rle_decode(text, shape, order)
  assert decoded.dtype == np.uint8
  np.testing.assert_array_equal(decoded, mask)
  assert rle_encode(decoded, order) == text
  values = [int(v) for v in text.split()]
  assert sum(values[1::2]) == mask.sum()


def test_encode_accepts_bool_and_channel_axis_and_refuses_probabilities():
  assert rle_encode(MASK_3X3.astype(bool)) == '1 1 4 1 7 2'
  assert rle_encode(MASK_3X3[..., None]) == '1 1 4 1 7 2'
  with pytest.raises(ValueError, match='binary mask'):
    rle_encode(np.full((3, 3), 0.7))
  with pytest.raises(ValueError, match='2-D'):
    rle_encode(np.zeros((2, 3, 3)))
  with pytest.raises(ValueError, match='order'):
    rle_encode(MASK_3X3, order='K')


@pytest.mark.parametrize('text, message', [
    ('1 2 3', 'pairs'),
    ('0 2', 'numbered from 1'),
    ('3 0', 'lengths'),
    ('8 3', 'past the 9 pixels'),
    ('1 3 2 2', 'overlap'),
    ('5 1 1 1', 'sorted'),
    ('1 a', 'integers'),
])
def test_decode_refuses_malformed_text(text, message):
  with pytest.raises(ValueError, match=message):
    rle_decode(text, (3, 3))


def test_decode_refuses_a_shape_that_is_not_2d():
  with pytest.raises(ValueError, match='2-D shape'):
    rle_decode('1 1', (3, 3, 1))


def _ten_masks():
  rng = np.random.default_rng(7)
  ids = [f'img_{i:02d}' for i in range(10)]
  masks = (rng.random((10, 48, 64)) < 0.3).astype(np.uint8)
  masks[3] = 0  # one image without lesion
  return ids, masks


def _read_rows(path):
  with open(path, newline='') as file:
    return list(csv.reader(file))


def test_write_submission_keeps_given_order_and_round_trips(tmp_path):
  ids, masks = _ten_masks()
  order = [4, 0, 9, 3]
  path = tmp_path / 'out' / 'submission.csv'
  write_submission(path, [ids[i] for i in order], masks[order])
  rows = _read_rows(path)
  assert rows[0] == ['id', 'rle_mask']
  assert [r[0] for r in rows[1:]] == ['img_04', 'img_00', 'img_09', 'img_03']
  assert rows[4][1] == ''
  for (_, text), i in zip(rows[1:], order):
    np.testing.assert_array_equal(rle_decode(text, (48, 64)), masks[i])
  write_submission(path, ids[:1], masks[:1], header=('ImageId', 'EncodedPixels'))
  assert _read_rows(path)[0] == ['ImageId', 'EncodedPixels']


def test_write_submission_refuses_duplicates_and_length_mismatch(tmp_path):
  ids, masks = _ten_masks()
  with pytest.raises(ValueError, match="Duplicate id 'img_00'"):
    write_submission(tmp_path / 's.csv', ['img_00', 'img_00'], masks[:2])
  with pytest.raises(ValueError, match='3 ids for 2 masks'):
    write_submission(tmp_path / 's.csv', ids[:3], masks[:2])
  assert not (tmp_path / 's.csv').exists()


def _write_in_batches(path, ids, masks, batch_size, permutation):
  with SubmissionWriter(path) as writer:
    for start in range(0, len(ids), batch_size):
      chosen = permutation[start:start + batch_size]
      writer.add([ids[i] for i in chosen], masks[chosen])
  return path.read_bytes()


def test_same_csv_bytes_for_batch_sizes_1_and_7_and_shuffled_batches(tmp_path):
  ids, masks = _ten_masks()
  in_order = np.arange(10)
  shuffled = np.random.default_rng(0).permutation(10)
  one = _write_in_batches(tmp_path / 'b1.csv', ids, masks, 1, in_order)
  seven = _write_in_batches(tmp_path / 'b7.csv', ids, masks, 7, in_order)
  seven_shuffled = _write_in_batches(tmp_path / 'b7s.csv', ids, masks, 7, shuffled)
  one_shuffled = _write_in_batches(tmp_path / 'b1s.csv', ids, masks, 1, shuffled[::-1])
  assert one == seven == seven_shuffled == one_shuffled
  write_submission(tmp_path / 'direct.csv', ids, masks)
  assert one == (tmp_path / 'direct.csv').read_bytes()
  rows = _read_rows(tmp_path / 'b7s.csv')
  assert [r[0] for r in rows[1:]] == sorted(ids)
  assert len(rows) == 11


def test_writer_refuses_duplicates_across_batches_and_use_after_close(tmp_path):
  ids, masks = _ten_masks()
  writer = SubmissionWriter(tmp_path / 's.csv')
  writer.add(ids[:3], masks[:3])
  with pytest.raises(ValueError, match="Duplicate id 'img_02'"):
    writer.add(['img_05', 'img_02'], masks[5:7])
  writer.add(['img_05'], masks[5:6])  # the refused batch left nothing behind
  writer.close()
  assert [r[0] for r in _read_rows(tmp_path / 's.csv')[1:]] == ['img_00', 'img_01', 'img_02',
                                                               'img_05']
  with pytest.raises(ValueError, match='closed'):
    writer.add(ids[6:7], masks[6:7])


def test_writer_writes_nothing_when_prediction_fails(tmp_path):
  ids, masks = _ten_masks()
  path = tmp_path / 's.csv'
  with pytest.raises(RuntimeError):
    with SubmissionWriter(path) as writer:
      writer.add(ids[:2], masks[:2])
      raise RuntimeError('model crashed')
  assert not path.exists()
