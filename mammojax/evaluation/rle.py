"""Run-length encoding of masks and the competition submission CSV.

Encoding as in the Kaggle segmentation competitions ("Ultrasound Nerve
Segmentation", "TGS Salt"): pixels are numbered from 1 in COLUMN-major order
(``order='F'``: top to bottom, then left to right), and the text is pairs
``start length`` separated by single spaces, e.g. ``'1 3 10 2'``. An empty mask
is ``''``. ``order='C'`` (row-major, left to right then top to bottom) serves
competitions that number pixels by rows.
"""

import csv
import os
import pathlib

import numpy as np

ORDERS = ('F', 'C')
DEFAULT_HEADER = ('id', 'rle_mask')


def _check_order(order: str) -> None:
  if order not in ORDERS:
    raise ValueError(f"Unknown pixel order {order!r}; use 'F' (column-major, Kaggle) or 'C' "
                     '(row-major).')


def rle_encode(mask, order: str = 'F') -> str:
  """Binary mask (H, W) or (H, W, 1) of 0/1 (or bool) values -> ``'start length ...'``."""
  _check_order(order)
  mask = np.asarray(mask)
  if mask.ndim == 3 and mask.shape[-1] == 1:
    mask = mask[..., 0]
  if mask.ndim != 2:
    raise ValueError(f'rle_encode expects a 2-D mask; got shape {mask.shape}.')
  if mask.dtype != bool and np.any((mask != 0) & (mask != 1)):
    raise ValueError('rle_encode expects a binary mask of 0/1 values; threshold probabilities '
                     'first (mask_postprocess.postprocess_mask) or divide 0/255 masks by 255.')
  pixels = np.concatenate([[0], mask.ravel(order=order).astype(np.int8), [0]])
  # 1-based positions where the value changes: alternately run starts and run ends.
  changes = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
  starts, ends = changes[0::2], changes[1::2]
  runs = np.stack([starts, ends - starts], axis=1).ravel()
  return ' '.join(str(int(value)) for value in runs)


def _parse_runs(text: str, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(starts, lengths) from RLE text, checked against a mask of ``size`` pixels."""
  try:
    values = np.array([int(token) for token in str(text).split()], dtype=np.int64)
  except ValueError as error:
    raise ValueError(f'RLE text must be integers "start length ..."; {error}.') from None
  if values.size % 2:
    raise ValueError(f'RLE text has {values.size} numbers; it needs start/length pairs.')
  starts, lengths = values[0::2], values[1::2]
  if np.any(starts < 1) or np.any(lengths < 1):
    raise ValueError('RLE starts are numbered from 1 and lengths must be >= 1.')
  ends = starts + lengths - 1
  if np.any(ends > size):
    raise ValueError(f'RLE run ends at pixel {int(ends.max())}, past the {size} pixels of the '
                     'mask; check the shape and the pixel order.')
  if np.any(starts[1:] <= ends[:-1]):
    raise ValueError('RLE runs must be sorted and must not overlap.')
  return starts, lengths


def rle_decode(text: str, shape: tuple[int, int], order: str = 'F') -> np.ndarray:
  """RLE text -> uint8 0/1 mask of ``shape`` (H, W); the inverse of ``rle_encode``."""
  _check_order(order)
  if len(shape) != 2:
    raise ValueError(f'rle_decode needs a 2-D shape (height, width); got {tuple(shape)}.')
  height, width = (int(size) for size in shape)
  starts, lengths = _parse_runs(text, height * width)
  # +1 at each run start, -1 just after each end; the running sum is the mask.
  steps = np.zeros(height * width + 1, np.int64)
  np.add.at(steps, starts - 1, 1)
  np.add.at(steps, starts - 1 + lengths, -1)
  flat = np.cumsum(steps[:-1]).astype(np.uint8)
  return flat.reshape((height, width), order=order)


def _encode_rows(ids, masks, order: str) -> list[tuple[str, str]]:
  ids = [str(i) for i in ids]
  if len(ids) != len(masks):
    raise ValueError(f'Got {len(ids)} ids for {len(masks)} masks; give one id per mask.')
  return [(i, rle_encode(mask, order)) for i, mask in zip(ids, masks)]


def _write_rows(path, rows, header) -> None:
  """Writes via a temporary file so a crash never leaves a half-written submission."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  partial = path.with_name(path.name + '.partial')
  with open(partial, 'w', newline='') as file:
    writer = csv.writer(file, lineterminator='\n')
    writer.writerow(header)
    writer.writerows(rows)
  os.replace(partial, path)


def _check_unique(ids: list[str], seen: set) -> None:
  """Refuses ids repeated in ``ids`` or already in ``seen``; then records them in ``seen``."""
  batch = set()
  for i in ids:
    if i in seen or i in batch:
      raise ValueError(f'Duplicate id {i!r} in the submission; each image must appear once.')
    batch.add(i)
  seen.update(batch)  # only after the whole batch passed, so a refused batch leaves no trace


def write_submission(path: str | os.PathLike, ids, masks, *, header=DEFAULT_HEADER,
                     order: str = 'F') -> None:
  """Writes a CSV ``id,rle_mask`` (``header``) with one row per mask, in the order given."""
  rows = _encode_rows(ids, masks, order)
  _check_unique([i for i, _ in rows], set())
  _write_rows(path, rows, header)


class SubmissionWriter:
  """Builds a submission batch by batch; rows are sorted by id when written.

  Sorting at ``close()`` makes the file independent of batch size and batch
  order. Masks are encoded as they arrive, so only the short RLE strings are
  kept in memory. Usable as a context manager (writes on a clean exit only).
  """

  def __init__(self, path: str | os.PathLike, *, header=DEFAULT_HEADER, order: str = 'F'):
    _check_order(order)
    self.path, self.header, self.order = path, tuple(header), order
    self._rows: list[tuple[str, str]] = []
    self._seen: set[str] = set()
    self._closed = False

  def add(self, ids, masks) -> None:
    """Encodes one batch: ``ids`` (B,) and binary ``masks`` (B, H, W[, 1])."""
    if self._closed:
      raise ValueError(f'SubmissionWriter for {self.path} is closed; create a new one.')
    rows = _encode_rows(ids, masks, self.order)
    _check_unique([i for i, _ in rows], self._seen)
    self._rows.extend(rows)

  def close(self) -> None:
    """Writes the CSV with rows sorted by id text; later ``add`` calls are refused."""
    if self._closed:
      return
    self._closed = True
    _write_rows(self.path, sorted(self._rows), self.header)

  def __enter__(self) -> 'SubmissionWriter':
    return self

  def __exit__(self, exc_type, exc, traceback) -> None:
    if exc_type is None:
      self.close()
