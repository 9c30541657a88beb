"""Reader of folder-per-class image trees (Kermany/Kaggle 'chest_xray' and the like).

Two layouts are read::

    root/train/NORMAL/IM-0115-0001.jpeg          root/NORMAL/IM-0115-0001.jpeg
    root/train/PNEUMONIA/person1_virus_7.jpeg    root/PNEUMONIA/person1_virus_7.jpeg
    root/test/...   root/val/...                 (no split level: split '')

The first level is a split level when every folder there is named train,
test, val or validation (any case); class folders may hold subfolders. The
class is the class folder's name as written.

Decisions:
  * patient_id: Kermany file names carry the patient ('person1_bacteria_1',
    'person1_virus_7' -> 'person1'; 'IM-0115-0001', 'NORMAL2-IM-0115-0001'
    -> 'IM-0115'), so one patient's images never fall on both sides of a
    split. Merging two people who share a number only makes the groups
    coarser, which cannot leak. Other names: the file stem.
  * A class missing from some split folder (e.g. 'Pneumonia' in test but
    'PNEUMONIA' in train) would train or test a label the other side never
    sees: its images are skipped with a reason naming the split folders that
    lack it, and a warning is logged. Only classes found in every split stay.
  * Non-image files (.DS_Store, .txt, ...) and files outside a class folder
    are skipped with a reason; hidden folders and macOS '__MACOSX' folders
    are ignored.
"""

from __future__ import annotations

import logging
import os
import re

from mammojax.data import image_io

SPLIT_FOLDERS = {'train': 'train', 'test': 'test', 'val': 'val', 'validation': 'val'}
IGNORED_FOLDERS = ('__MACOSX',)
# 'person12_...' or '...IM-0115-...': the patient part of a Kermany file name.
_PATIENT_PATTERN = re.compile(r'(?<![a-z])(person\d+|IM-\d+)', re.IGNORECASE)
_LAYOUT_HINT = ('Expected layout: root/<class>/<image> or root/<split>/<class>/<image> '
                'with split folders train, val (or validation) and test, e.g. '
                'chest_xray/train/PNEUMONIA/person1_virus_7.jpeg.')


def read_class_folders(root: str | os.PathLike, *,
                       source: str = 'folders') -> tuple[list[dict], list[dict]]:
  """Read a folder-per-class tree of images.

  Args:
    root: the tree's top folder.
    source: the records' source name (and id prefix), e.g. 'chest_xray'.

  Returns:
    ``(records, skipped)``: one record per image with id
    '<source>/<path under root>', image_id (= id), image_path, class_name
    (the class folder name), patient_id (see the module docstring), source,
    split ('train'/'val'/'test', or '' without split folders), mask_paths []
    and rois [] (whole-image examples). ``skipped`` holds ``{'file', 'id',
    'reason'}`` for every file left out.

  Raises:
    FileNotFoundError: ``root`` is not a folder.
    ValueError: split and non-split folders mixed at the first level, or
      no image at all in the tree.
  """
  root = os.path.abspath(root)
  if not os.path.isdir(root):
    raise FileNotFoundError(f'Image folder tree not found: {root}. {_LAYOUT_HINT}')
  split_dirs = _split_folders(root)
  records, skipped = [], []
  for split, split_dir in split_dirs.items():
    new_records, new_skipped = _read_class_level(root, split_dir, split, source)
    records += new_records
    skipped += new_skipped
  if not records:
    raise ValueError(f'No image found under {root} ({len(skipped)} files skipped, e.g. '
                     f'{skipped[:1]}). {_LAYOUT_HINT}')
  empty = [folder for split, folder in split_dirs.items()
           if not any(r['split'] == split for r in records)]
  if empty:
    raise ValueError(f'Split folder(s) {empty} hold no image in a class folder; fill or '
                     f'remove them. {_LAYOUT_HINT}')
  return _keep_shared_classes(records, skipped, split_dirs)


def patient_of(file_name: str) -> str:
  """'person1_virus_7.jpeg' -> 'person1', 'NORMAL2-IM-1427-0001.jpeg' -> 'IM-1427', else stem."""
  stem = os.path.splitext(os.path.basename(file_name))[0]
  match = _PATIENT_PATTERN.search(stem)
  return match.group(0) if match else stem


def _visible_folders(folder: str) -> list[str]:
  return sorted(name for name in os.listdir(folder)
                if os.path.isdir(os.path.join(folder, name)) and not name.startswith('.')
                and name not in IGNORED_FOLDERS)


def _split_folders(root: str) -> dict[str, str]:
  """{split: folder}: the first level when it is a split level, else {'': root}."""
  folders = _visible_folders(root)
  splits = [name for name in folders if name.lower() in SPLIT_FOLDERS]
  if not splits:
    return {'': root}
  if len(splits) != len(folders):
    others = sorted(set(folders) - set(splits))
    raise ValueError(f'{root} mixes split folders {splits} with other folders {others}; put '
                     f'every class folder inside a split folder or drop the split level. '
                     f'{_LAYOUT_HINT}')
  result = {}
  for name in splits:
    split = SPLIT_FOLDERS[name.lower()]
    if split in result:  # 'val' and 'validation' both present: which one is meant?
      raise ValueError(f'{root} has two folders for split {split!r}: {name!r} and '
                       f'{os.path.basename(result[split])!r}; keep one.')
    result[split] = os.path.join(root, name)
  return result


def _read_class_level(root: str, folder: str, split: str,
                      source: str) -> tuple[list[dict], list[dict]]:
  """Records of every class folder in ``folder``; loose files there are skipped."""
  records, skipped = [], []
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if os.path.isfile(path):
      skipped.append(_skip(root, path, source, 'not inside a class folder'))
  for class_name in _visible_folders(folder):
    for path in _files_under(os.path.join(folder, class_name)):
      reason = _unusable(path)
      if reason:
        skipped.append(_skip(root, path, source, reason))
      else:
        records.append(_record(root, path, class_name, split, source))
  return records, skipped


def _files_under(folder: str) -> list[str]:
  found = []
  for parent, subfolders, names in os.walk(folder):
    subfolders[:] = sorted(name for name in subfolders
                           if not name.startswith('.') and name not in IGNORED_FOLDERS)
    found += [os.path.join(parent, name) for name in sorted(names)]
  return found


def _unusable(path: str) -> str:
  """Why a file cannot be an image of the set ('' when it can)."""
  if not path.lower().endswith(image_io.IMAGE_SUFFIXES):
    return f'not an image file (suffixes read: {", ".join(image_io.IMAGE_SUFFIXES)})'
  if os.path.getsize(path) == 0:
    return 'empty file'
  return ''


def _record_id(root: str, path: str, source: str) -> str:
  return f'{source}/{os.path.relpath(path, root).replace(os.sep, "/")}'


def _record(root: str, path: str, class_name: str, split: str, source: str) -> dict:
  record_id = _record_id(root, path, source)
  return {
      'id': record_id,
      'image_id': record_id,
      'image_path': path,
      'class_name': class_name,
      'patient_id': patient_of(path),
      'source': source,
      'split': split,
      'mask_paths': [],
      'rois': [],
  }


def _skip(root: str, path: str, source: str, reason: str) -> dict:
  return {'file': path, 'id': _record_id(root, path, source), 'reason': reason}


def _keep_shared_classes(records: list[dict], skipped: list[dict],
                         split_dirs: dict[str, str]) -> tuple[list[dict], list[dict]]:
  """Skip the images of classes that some split folder lacks (see the module docstring)."""
  classes = {split: {r['class_name'] for r in records if r['split'] == split}
             for split in split_dirs}
  shared = set.intersection(*classes.values())
  missing = {name: [split_dirs[split] for split in split_dirs if name not in classes[split]]
             for name in set.union(*classes.values()) - shared}
  if missing:
    logging.warning('Classes missing from some split folders, their images skipped: %s',
                    missing)
  kept = [r for r in records if r['class_name'] in shared]
  skipped = skipped + [{'file': r['image_path'], 'id': r['id'],
                        'reason': f'class {r["class_name"]!r} is missing from split folder(s) '
                                  f'{missing[r["class_name"]]}'}
                       for r in records if r['class_name'] not in shared]
  return kept, skipped
