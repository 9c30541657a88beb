"""Every image under a folder, unlabelled: the input of self-supervised pretraining.

Records have class 'unlabelled', no lesion, and the file's path under the
root as id and patient (nothing finer is known; patients spread over several
files should be given as a folder source with classes instead). Hidden files
and folders are ignored; other non-image files are skipped and listed.
"""

import os
import pathlib

from mammojax.data import image_io

SOURCE_NAME = 'images'
UNLABELLED = 'unlabelled'


def read_image_folder(root: str | os.PathLike) -> tuple[list[dict], list[dict]]:
  """(records, skipped) of every image file under ``root`` (recursively, sorted)."""
  root = pathlib.Path(os.path.abspath(root))
  records, skipped = [], []
  for parent, folders, names in os.walk(root):
    folders[:] = sorted(f for f in folders if not f.startswith('.'))
    for name in sorted(n for n in names if not n.startswith('.')):
      path = pathlib.Path(parent) / name
      key = path.relative_to(root).as_posix()
      if path.suffix.lower() not in image_io.IMAGE_SUFFIXES:
        skipped.append({'id': key, 'file': str(path), 'reason': 'not an image file'})
        continue
      records.append({'id': f'{SOURCE_NAME}/{key}', 'image_id': key, 'image_path': str(path),
                      'class_name': UNLABELLED, 'patient_id': key, 'source': SOURCE_NAME,
                      'split': '', 'mask_paths': [], 'rois': []})
  if not records:
    raise ValueError(f'No image ({", ".join(image_io.IMAGE_SUFFIXES)}) under {root}; '
                     'data.source=images reads every image file below data.root.')
  return records, skipped
