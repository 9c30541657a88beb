"""Deterministic synthetic mammography set written in the CBIS-DDSM layout.

Why it exists: the main job must run on a fresh machine with no download and
still learn something real. The set has the CBIS-DDSM CSV schema, full images,
cropped ROIs and one ROI mask per abnormality, so it goes through the same
reader (``mammojax.data.sources.cbis_ddsm``) as the real data.

What the classes look like (overlapping on purpose, so that a good model lands
well above chance but below perfect):
  * benign masses: round/oval, sharp (circumscribed) margins; some lobulated
    or ill-defined;
  * malignant masses: irregular, blurred margins, radiating spicules; some
    with few or faint spicules;
  * benign calcifications: a few coarse round dots scattered over a wide area;
  * malignant calcifications: many fine pleomorphic dots and short
    linear/branching segments in a tight cluster.

This module decides what each patient has and writes the files; the
pixels come from ``mammojax.data.sources.synthetic_render``.

Every patient is drawn from ``np.random.default_rng([seed, patient_index])``,
so patients do not depend on each other or on ``num_patients``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pathlib
import shutil
import socket
import uuid

import cv2
import numpy as np

from mammojax.data.sources import synthetic_render as render
from mammojax.data.sources.cbis_ddsm import CSV_FILE_NAMES, ID_PREFIXES
from mammojax.data.sources.synthetic_render import Lesion

# Part of the folder name: bump it whenever the generated content changes, so a
# set written by older code is never reused as if it were the current one.
FORMAT_VERSION = 2
COMPLETE_MARKER = "COMPLETE"
_TEMP_PREFIX = ".tmp-"

MASS_COLUMNS = (
    "patient_id",
    "breast density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
)  # fmt: skip
CALC_COLUMNS = (
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "calc type",
    "calc distribution",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
)  # fmt: skip

# Lesion sizes below are in pixels of a 384x304 image and scale with the size
# (synthetic_render.size_scale); smaller images than this leave lesions invisible.
_MIN_SIZE = (96, 80)
# Share of lesions drawn with the look of the other class (see module doc).
_HARD_FRACTION = 0.17
_BENIGN_WITHOUT_CALLBACK_FRACTION = 0.25


@dataclasses.dataclass
class Patient:
  """Everything drawn once per patient; the views are rendered from it."""

  index: int
  patient_id: str
  split: str
  laterality: str
  views: tuple[str, ...]
  abnormality_type: str
  density: int
  lesions: list[Lesion]


# --------------------------------------------------------------------------
# Public entry point and atomic publication
# --------------------------------------------------------------------------


def dataset_folder_name(num_patients: int, seed: int, image_height: int, image_width: int) -> str:
  """Folder name encoding everything that changes the content."""
  return (f"synthetic_cbis_ddsm_v{FORMAT_VERSION}_p{num_patients}_s{seed}"
          f"_{image_height}x{image_width}")


def ensure_synthetic_cbis_ddsm(
    root: str | os.PathLike,
    *,
    num_patients: int = 160,
    seed: int = 0,
    image_height: int = 384,
    image_width: int = 304,
) -> pathlib.Path:
  """Generate (once) and return the dataset folder. Reuses it if already complete.

  The set is written to a temporary sibling folder and renamed into place, so
  a killed run never leaves a half-written set that a later call would reuse,
  and concurrent callers do not interfere (the first rename wins; the
  content is deterministic, so the losers simply drop theirs).

  Args:
    root: parent folder; the set goes to ``root/<dataset_folder_name(...)>``.
    num_patients: patients to draw (~75% train, ~25% test).
    seed: base seed; patient ``i`` uses ``np.random.default_rng([seed, i])``.
    image_height, image_width: full-image size in pixels; lesion sizes
      scale with it (they are given for the default 384x304).
  """
  _check_parameters(num_patients, seed, image_height, image_width)
  root = pathlib.Path(root)
  final = root / dataset_folder_name(num_patients, seed, image_height, image_width)
  if is_complete(final):
    return final
  root.mkdir(parents=True, exist_ok=True)
  _remove_stale_temp_folders(root, final.name)
  temp = root / f"{_temp_prefix(final.name)}{os.getpid()}-{uuid.uuid4().hex[:8]}"
  try:
    _write_dataset(temp, num_patients, seed, (image_height, image_width))
    _publish(temp, final)
  finally:
    shutil.rmtree(temp, ignore_errors=True)
  return final


def is_complete(folder: str | os.PathLike) -> bool:
  """True when ``folder`` holds a fully written set (its marker is written last)."""
  return (pathlib.Path(folder) / COMPLETE_MARKER).is_file()


def _check_parameters(num_patients, seed, image_height, image_width) -> None:
  for name, value in [("num_patients", num_patients), ("seed", seed),
                      ("image_height", image_height), ("image_width", image_width)]:  # fmt: skip
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
      raise TypeError(f"{name} must be an integer, got {value!r}.")
  if num_patients < 1 or seed < 0:
    raise ValueError(f"Need num_patients >= 1 and seed >= 0, got {num_patients}, {seed}.")
  if image_height < _MIN_SIZE[0] or image_width < _MIN_SIZE[1]:
    raise ValueError(f"Image size {image_height}x{image_width} is too small for visible lesions; "
                     f"use at least {_MIN_SIZE[0]}x{_MIN_SIZE[1]} (default 384x304).")


def _temp_prefix(name: str) -> str:
  # The host name keeps stale-folder cleanup from touching another machine's
  # live run when root sits on a shared file system.
  return f"{_TEMP_PREFIX}{name}-{socket.gethostname()}-"


def _publish(temp: pathlib.Path, final: pathlib.Path) -> None:
  """Rename the finished set into place unless another process got there first."""
  if final.exists() and not is_complete(final):
    # Publication is a single rename, so only a manual edit leaves an
    # unmarked folder here; move it aside (atomic), then delete it.
    trash = final.with_name(f"{_TEMP_PREFIX}{final.name}-discarded-{uuid.uuid4().hex[:8]}")
    try:
      os.replace(final, trash)
    except FileNotFoundError:
      pass  # a concurrent caller moved it first
    shutil.rmtree(trash, ignore_errors=True)
  try:
    os.replace(temp, final)
  except OSError:
    if not is_complete(final):
      raise
    # A concurrent caller published first; its content is the same.


def _remove_stale_temp_folders(root: pathlib.Path, name: str) -> None:
  """Delete temp folders left by killed runs on this host (their process is gone)."""
  prefix = _temp_prefix(name)
  for folder in root.glob(f"{prefix}*"):
    pid_text = folder.name[len(prefix):].split("-")[0]
    if pid_text.isdigit() and not _process_alive(int(pid_text)):
      shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # exists, owned by another user
  return True


# --------------------------------------------------------------------------
# Writing the files
# --------------------------------------------------------------------------


def _write_dataset(folder: pathlib.Path, num_patients: int, seed: int, image_size) -> None:
  """Write images, masks, crops, the four CSVs and, last, the marker."""
  folder.mkdir(parents=True)
  rows = {key: [] for key in CSV_FILE_NAMES}
  num_images = 0
  for index in range(num_patients):
    rng = np.random.default_rng([seed, index])
    patient = _sample_patient(rng, index, image_size)
    for view in patient.views:
      image, masks = render.render_view(rng, patient.lesions, patient.density, patient.laterality,
                                        view, image_size)
      key = (patient.abnormality_type, patient.split)
      rows[key] += _write_view(folder, patient, view, image, masks)
      num_images += 1
  for key, key_rows in rows.items():
    _write_csv(folder / CSV_FILE_NAMES[key], key[0], key_rows)
  summary = {
      "format_version": FORMAT_VERSION,
      "num_patients": num_patients,
      "seed": seed,
      "image_height": image_size[0],
      "image_width": image_size[1],
      "num_images": num_images,
      "num_abnormalities": sum(len(key_rows) for key_rows in rows.values()),
  }
  (folder / COMPLETE_MARKER).write_text(json.dumps(summary, indent=2) + "\n")


def _write_view(folder, patient: Patient, view: str, image, masks) -> list[list]:
  """Write one full image with its crops and masks; return its CSV rows."""
  prefix = ID_PREFIXES[(patient.abnormality_type, patient.split)]
  image_dir = f"{prefix}_{patient.patient_id}_{patient.laterality}_{view}"
  image_path = f"{image_dir}/full/000000.png"
  _write_png(folder / image_path, image)
  rows = []
  for abnormality_id, (lesion, mask) in masks.items():
    roi_dir = f"{image_dir}_{abnormality_id}/roi"
    crop_path, mask_path = f"{roi_dir}/000000.png", f"{roi_dir}/000001.png"
    _write_png(folder / crop_path, _bounding_box_crop(image, mask))
    _write_png(folder / mask_path, mask)
    rows.append([
        patient.patient_id,
        patient.density,
        patient.laterality,
        view,
        abnormality_id,
        lesion.abnormality_type,
        lesion.shape,
        lesion.margins,
        lesion.assessment,
        lesion.pathology,
        lesion.subtlety,
        image_path,
        crop_path,
        mask_path,
    ])  # fmt: skip
  return rows


def _write_png(path: pathlib.Path, array: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  if not cv2.imwrite(str(path), array):
    raise OSError(f"Could not write {path}.")


def _write_csv(path: pathlib.Path, abnormality_type: str, rows: list[list]) -> None:
  columns = MASS_COLUMNS if abnormality_type == "mass" else CALC_COLUMNS
  with open(path, "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle)
    writer.writerow(columns)
    writer.writerows(rows)


def _bounding_box_crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  x, y, width, height = cv2.boundingRect(mask)
  return image[y:y + height, x:x + width]


# --------------------------------------------------------------------------
# Patients and their abnormalities
# --------------------------------------------------------------------------


def _sample_patient(rng: np.random.Generator, index: int, image_size) -> Patient:
  """Draw a patient: side, views, density and its abnormalities (shared by the views)."""
  scale = render.size_scale(image_size)
  views = ("CC", "MLO") if rng.random() < 0.7 else (str(rng.choice(["CC", "MLO"])),)
  abnormality_type = "mass" if rng.random() < 0.5 else "calcification"
  sampler = _sample_mass if abnormality_type == "mass" else _sample_calcification
  num_lesions = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
  return Patient(
      index=index,
      patient_id=f"P_{index + 1:05d}",
      # A fixed pattern gives ~25% test patients even in tiny sets.
      split="test" if index % 4 == 3 else "train",
      laterality="LEFT" if rng.random() < 0.5 else "RIGHT",
      views=views,
      abnormality_type=abnormality_type,
      density=int(rng.choice([1, 2, 3, 4], p=[0.15, 0.4, 0.3, 0.15])),
      lesions=[sampler(rng,
                       rng.random() < 0.5, scale) for _ in range(num_lesions)],
  )


def _pathology(rng: np.random.Generator, malignant: bool) -> str:
  if malignant:
    return "MALIGNANT"
  if rng.random() < _BENIGN_WITHOUT_CALLBACK_FRACTION:
    return "BENIGN_WITHOUT_CALLBACK"
  return "BENIGN"


def _assessment(rng: np.random.Generator, pathology: str) -> int:
  """BI-RADS category consistent with the pathology."""
  if pathology == "MALIGNANT":
    return int(rng.choice([4, 5], p=[0.55, 0.45]))
  if pathology == "BENIGN_WITHOUT_CALLBACK":
    return int(rng.choice([2, 3], p=[0.7, 0.3]))
  return int(rng.choice([2, 3, 4], p=[0.2, 0.35, 0.45]))


def _subtlety(rng: np.random.Generator, contrast: float, low: float, high: float) -> int:
  """1 = subtle ... 5 = obvious, following the drawn contrast."""
  position = (contrast - low) / (high - low)
  return int(np.clip(round(1 + 4 * position + rng.normal(0, 0.5)), 1, 5))


def _mass_style(rng: np.random.Generator, malignant: bool, hard: bool) -> tuple[str, str]:
  """(mass shape, mass margins) in the CSV vocabulary."""
  if not malignant and not hard:
    shape = rng.choice(["ROUND", "OVAL"])
    margins = rng.choice(["CIRCUMSCRIBED", "OBSCURED"], p=[0.75, 0.25])
  elif not malignant:  # lobulated / irregular benign, a few faint spicules
    shape = rng.choice(["LOBULATED", "IRREGULAR"])
    margins = rng.choice(["ILL_DEFINED", "MICROLOBULATED", "OBSCURED"], p=[0.5, 0.25, 0.25])
  elif hard:  # malignant with a smoother outline and few or faint spicules
    shape = rng.choice(["OVAL", "LOBULATED", "ROUND"])
    margins = rng.choice(["MICROLOBULATED", "OBSCURED", "ILL_DEFINED"])
  elif rng.random() < 0.2:
    shape, margins = "ARCHITECTURAL_DISTORTION", "SPICULATED"
  else:
    shape = "IRREGULAR"
    margins = rng.choice(["SPICULATED", "ILL_DEFINED"], p=[0.65, 0.35])
  return str(shape), str(margins)


def _sample_mass(rng: np.random.Generator, malignant: bool, scale: float) -> Lesion:
  """Draw a mass: outline from its shape, edge blur and spicules from its margins."""
  hard = rng.random() < _HARD_FRACTION
  shape, margins = _mass_style(rng, malignant, hard)
  radius = (rng.uniform(12, 28) if malignant else rng.uniform(10, 24)) * scale
  if shape == "ARCHITECTURAL_DISTORTION":
    radius *= 0.6  # a small dense centre; the spicules carry the finding
  outline = render.mass_outline(rng, shape, margins, radius)
  plan = render.spicule_plan(rng, margins, shape, hard)
  spicules = render.spicules(rng, outline, plan, scale)
  contrast = rng.uniform(0.07, 0.22) if malignant else rng.uniform(0.06, 0.2)
  if margins == "OBSCURED":
    contrast *= 0.75  # partly hidden by overlying tissue
  pathology = _pathology(rng, malignant)
  return Lesion(
      abnormality_type="mass",
      pathology=pathology,
      shape=shape,
      margins=margins,
      assessment=_assessment(rng, pathology),
      subtlety=_subtlety(rng, contrast, 0.05, 0.22),
      contrast=float(contrast),
      radius=render.mass_radius(outline, spicules),
      outline=outline,
      margin_sigma=render.margin_sigma(rng, margins, radius, scale),
      spicules=spicules,
  )


# (malignant, hard) -> look of a calcification cluster. Sizes in px at 384x304;
# "linear" is the share of dots drawn as short (sometimes branching) segments.
_CALC_PLANS = {
    (False, False):
        dict(  # few coarse round dots scattered over a wide area
            count=(3, 9),
            dot_radius=(2.0, 4.0),
            extent=(35, 60),
            linear=(0.0, 0.0),
            elongation=(1.0, 1.3),
            layouts=("uniform",),
            types=("COARSE", "ROUND_AND_REGULAR"),
            distributions=("SCATTERED", "REGIONAL"),
        ),
    (False, True):
        dict(  # smaller, more numerous, clustered
            count=(6, 15),
            dot_radius=(1.3, 2.5),
            extent=(25, 45),
            linear=(0.0, 0.0),
            elongation=(1.0, 1.5),
            layouts=("gaussian",),
            types=("PUNCTATE", "ROUND_AND_REGULAR"),
            distributions=("CLUSTERED", "REGIONAL"),
        ),
    (True, True):
        dict(  # fewer, coarser, rounder and looser than typical malignant
            count=(5, 13),
            dot_radius=(1.2, 2.4),
            extent=(30, 55),
            linear=(0.08, 0.08),
            elongation=(1.0, 1.6),
            layouts=("gaussian",),
            types=("AMORPHOUS", "PUNCTATE"),
            distributions=("CLUSTERED", "REGIONAL"),
        ),
    (True, False):
        dict(  # many fine pleomorphic dots and segments, tight cluster
            count=(10, 31),
            dot_radius=(0.7, 1.6),
            extent=(20, 40),
            linear=(0.15, 0.5),
            elongation=(1.0, 3.0),
            layouts=("gaussian", "gaussian", "gaussian", "linear", "segmental"),
            types=("PLEOMORPHIC",),
            distributions=("CLUSTERED",),
        ),
}  # fmt: skip
_LAYOUT_DISTRIBUTION = {"linear": "LINEAR", "segmental": "SEGMENTAL"}


def _sample_calcification(rng: np.random.Generator, malignant: bool, scale: float) -> Lesion:
  """Draw a calcification cluster as a list of dot/segment primitives."""
  plan = _CALC_PLANS[(malignant, bool(rng.random() < _HARD_FRACTION))]
  linear_share = rng.uniform(*plan["linear"])
  layout = str(rng.choice(plan["layouts"]))
  calc_type = "FINE_LINEAR_BRANCHING" if linear_share > 0.35 else str(rng.choice(plan["types"]))
  distribution = _LAYOUT_DISTRIBUTION.get(layout) or str(rng.choice(plan["distributions"]))
  dots = render.calc_cluster(rng, plan, layout, linear_share, scale)
  contrast = rng.uniform(0.18, 0.4)
  pathology = _pathology(rng, malignant)
  return Lesion(
      abnormality_type="calcification",
      pathology=pathology,
      shape=calc_type,
      margins=distribution,
      assessment=_assessment(rng, pathology),
      subtlety=_subtlety(rng, contrast, 0.18, 0.4),
      contrast=float(contrast),
      radius=render.calc_cluster_radius(dots, scale),
      dots=dots,
  )
