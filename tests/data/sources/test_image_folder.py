import cv2
import numpy as np
import pytest

from mammojax.data import records
from mammojax.data.sources import image_folder


def test_every_image_below_the_root_is_an_unlabelled_record(tmp_path):
  (tmp_path / 'a' / 'b').mkdir(parents=True)
  (tmp_path / '.hidden').mkdir()
  for path in ('x.png', 'a/y.jpg', 'a/b/z.pgm', '.hidden/w.png'):
    cv2.imwrite(str(tmp_path / path), np.zeros((4, 4), np.uint8))
  (tmp_path / 'notes.txt').write_text('not an image')
  found, skipped = image_folder.read_image_folder(tmp_path)
  assert [r['image_id'] for r in found] == ['x.png', 'a/y.jpg', 'a/b/z.pgm']
  for record in found:
    records.check_record(record)
    assert record['class_name'] == 'unlabelled' and not records.has_roi(record)
  assert [s['id'] for s in skipped] == ['notes.txt']


def test_a_folder_without_images_is_explained(tmp_path):
  with pytest.raises(ValueError, match='data.source=images'):
    image_folder.read_image_folder(tmp_path)
