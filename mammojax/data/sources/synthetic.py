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

Every patient is drawn from ``np.random.default_rng([seed, patient_index])``,
so patients do not depend on each other or on ``num_patients``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import pathlib
import shutil
import socket
import uuid

import cv2
import numpy as np

from mammojax.data.sources.cbis_ddsm import CSV_FILE_NAMES, ID_PREFIXES

# Part of the folder name: bump it whenever the generated content changes, so a
# set written by older code is never reused as if it were the current one.
FORMAT_VERSION = 2
COMPLETE_MARKER = "COMPLETE"
_TEMP_PREFIX = ".tmp-"

MASS_COLUMNS = (
    "patient_id", "breast density", "left or right breast", "image view",
    "abnormality id", "abnormality type", "mass shape", "mass margins",
    "assessment", "pathology", "subtlety", "image file path",
    "cropped image file path", "ROI mask file path",
)  # fmt: skip
CALC_COLUMNS = (
    "patient_id", "breast_density", "left or right breast", "image view",
    "abnormality id", "abnormality type", "calc type", "calc distribution",
    "assessment", "pathology", "subtlety", "image file path",
    "cropped image file path", "ROI mask file path",
)  # fmt: skip

# Lesion sizes below are in pixels of a 384x304 image and scale with the size.
_REFERENCE_SIZE = (384, 304)
_MIN_SIZE = (96, 80)
# Share of lesions drawn with the look of the other class (see module doc).
_HARD_FRACTION = 0.17
_BENIGN_WITHOUT_CALLBACK_FRACTION = 0.25
_MARKER_PROBABILITY = 0.35


@dataclasses.dataclass
class Lesion:
    """One abnormality of a patient, in its own frame (centre at the origin)."""

    abnormality_type: str  # "mass" | "calcification"
    pathology: str
    shape: str  # mass shape or calc type (CSV vocabulary)
    margins: str  # mass margins or calc distribution (CSV vocabulary)
    assessment: int
    subtlety: int
    contrast: float
    radius: float  # bounding radius in px, used to place lesions apart
    outline: np.ndarray | None = None  # (N, 2) mass body polygon
    margin_sigma: float = 0.0  # edge blur of the mass body
    spicules: list = dataclasses.field(default_factory=list)  # [(points (K,2), intensity)]
    dots: list = dataclasses.field(default_factory=list)  # calc primitives, see _calc_dot


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


@dataclasses.dataclass
class _Anatomy:
    """Breast geometry of one view, canonical frame (chest wall at x = 0)."""

    radius_map: np.ndarray  # elliptical radius, < 1 inside the breast
    semi_axes: tuple[float, float]  # (x, y)
    center_y: float
    pectoral: tuple[float, float] | None  # triangle legs (x on top edge, y on chest wall)


# --------------------------------------------------------------------------
# Public entry point and atomic publication
# --------------------------------------------------------------------------


def dataset_folder_name(num_patients: int, seed: int, image_height: int, image_width: int) -> str:
    """Folder name encoding everything that changes the content."""
    return (
        f"synthetic_cbis_ddsm_v{FORMAT_VERSION}_p{num_patients}_s{seed}"
        f"_{image_height}x{image_width}"
    )


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
        raise ValueError(
            f"Image size {image_height}x{image_width} is too small for visible lesions; "
            f"use at least {_MIN_SIZE[0]}x{_MIN_SIZE[1]} (default 384x304)."
        )


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
        pid_text = folder.name[len(prefix) :].split("-")[0]
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
            image, masks = _render_view(rng, patient, view, image_size)
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
            patient.patient_id, patient.density, patient.laterality, view,
            abnormality_id, lesion.abnormality_type, lesion.shape, lesion.margins,
            lesion.assessment, lesion.pathology, lesion.subtlety,
            image_path, crop_path, mask_path,
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
    return image[y : y + height, x : x + width]


# --------------------------------------------------------------------------
# Patients and their abnormalities
# --------------------------------------------------------------------------


def _sample_patient(rng: np.random.Generator, index: int, image_size) -> Patient:
    """Draw a patient: side, views, density and its abnormalities (shared by the views)."""
    scale = _scale(image_size)
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
        lesions=[sampler(rng, rng.random() < 0.5, scale) for _ in range(num_lesions)],
    )


def _scale(image_size) -> float:
    return min(image_size[0] / _REFERENCE_SIZE[0], image_size[1] / _REFERENCE_SIZE[1])


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


def _reach(points: np.ndarray) -> float:
    """Largest distance of a lesion's points from its centre."""
    return float(np.linalg.norm(points, axis=1).max())


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
    outline = _mass_outline(rng, shape, margins, radius)
    spicules = _spicules(rng, outline, _spicule_plan(rng, margins, shape, hard), scale)
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
        radius=max([_reach(outline)] + [_reach(points) for points, _ in spicules]) + 2.0,
        outline=outline,
        margin_sigma=_margin_sigma(rng, margins, radius, scale),
        spicules=spicules,
    )


# shape: (harmonic orders, amplitude range, aspect ratio range)
_OUTLINE_HARMONICS = {
    "ROUND": ((2, 3), (0.0, 0.04), (1.0, 1.15)),
    "OVAL": ((2, 3), (0.0, 0.04), (1.3, 1.7)),
    "LOBULATED": (None, (0.1, 0.2), (1.0, 1.4)),  # one lobe order drawn in 3..5
    "IRREGULAR": (tuple(range(2, 11)), (0.03, 0.14), (1.0, 1.5)),
    "ARCHITECTURAL_DISTORTION": (tuple(range(2, 11)), (0.03, 0.14), (1.0, 1.3)),
}


def _mass_outline(rng: np.random.Generator, shape: str, margins: str, radius: float):
    """Closed polygon r(theta) = radius * (1 + sum of harmonics), stretched to an aspect."""
    orders, (low, high), aspect_range = _OUTLINE_HARMONICS[shape]
    orders = orders or (int(rng.integers(3, 6)),)
    theta = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    relative = np.ones_like(theta)
    for order in orders:
        # Many-order outlines damp the high orders so they stay blobs, not stars.
        damping = math.sqrt(order / 2) if len(orders) > 2 else 1.0
        amplitude = rng.uniform(low, high) / damping
        relative += amplitude * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    if margins == "MICROLOBULATED":
        order = int(rng.integers(12, 20))
        relative += rng.uniform(0.04, 0.07) * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    relative = np.clip(relative, 0.45, None)
    aspect = math.sqrt(rng.uniform(*aspect_range))
    x = radius * relative * np.cos(theta) * aspect
    y = radius * relative * np.sin(theta) / aspect
    return np.stack([x, y], axis=1).astype(np.float32)


def _margin_sigma(rng: np.random.Generator, margins: str, radius: float, scale: float) -> float:
    """Edge blur: sharp for circumscribed, a fraction of the radius for ill-defined."""
    if margins == "CIRCUMSCRIBED":
        return float(rng.uniform(0.5, 1.0) * max(scale, 0.5))
    if margins == "MICROLOBULATED":
        return float(rng.uniform(1.0, 2.0) * max(scale, 0.5))
    fraction = {"OBSCURED": (0.08, 0.15), "ILL_DEFINED": (0.15, 0.3), "SPICULATED": (0.08, 0.2)}
    return float(rng.uniform(*fraction[margins]) * radius)


def _spicule_plan(rng, margins: str, shape: str, hard: bool) -> tuple[int, float, float]:
    """(count, lowest intensity, highest intensity) of the radiating lines."""
    if shape == "ARCHITECTURAL_DISTORTION":
        return int(rng.integers(10, 22)), 0.6, 1.0
    if margins == "SPICULATED":
        return int(rng.integers(6, 21)), 0.5, 1.0
    if margins == "ILL_DEFINED":
        return int(rng.integers(0, 6)), 0.2, 0.6
    if hard:
        return int(rng.integers(0, 3)), 0.2, 0.45
    return 0, 0.0, 0.0


def _spicules(rng, outline: np.ndarray, plan: tuple[int, float, float], scale: float) -> list:
    """Thin, slightly bent lines leaving the mass boundary outwards."""
    count, low, high = plan
    mean_radius = max(float(np.linalg.norm(outline, axis=1).mean()), 8 * scale)
    spicules = []
    for _ in range(count):
        start = outline[int(rng.integers(len(outline)))] * 0.8
        direction = math.atan2(start[1], start[0]) + rng.uniform(-0.3, 0.3)
        half_length = 0.5 * rng.uniform(0.5, 1.4) * mean_radius
        bent = direction + rng.uniform(-0.25, 0.25)
        middle = start + half_length * np.array([math.cos(direction), math.sin(direction)])
        end = middle + half_length * np.array([math.cos(bent), math.sin(bent)])
        points = np.stack([start, middle, end]).astype(np.float32)
        spicules.append((points, float(rng.uniform(low, high))))
    return spicules


# (malignant, hard) -> look of a calcification cluster. Sizes in px at 384x304;
# "linear" is the share of dots drawn as short (sometimes branching) segments.
_CALC_PLANS = {
    (False, False): dict(  # few coarse round dots scattered over a wide area
        count=(3, 9), dot_radius=(2.0, 4.0), extent=(35, 60), linear=(0.0, 0.0),
        elongation=(1.0, 1.3), layouts=("uniform",),
        types=("COARSE", "ROUND_AND_REGULAR"), distributions=("SCATTERED", "REGIONAL"),
    ),
    (False, True): dict(  # smaller, more numerous, clustered
        count=(6, 15), dot_radius=(1.3, 2.5), extent=(25, 45), linear=(0.0, 0.0),
        elongation=(1.0, 1.5), layouts=("gaussian",),
        types=("PUNCTATE", "ROUND_AND_REGULAR"), distributions=("CLUSTERED", "REGIONAL"),
    ),
    (True, True): dict(  # fewer, coarser, rounder and looser than typical malignant
        count=(5, 13), dot_radius=(1.2, 2.4), extent=(30, 55), linear=(0.08, 0.08),
        elongation=(1.0, 1.6), layouts=("gaussian",),
        types=("AMORPHOUS", "PUNCTATE"), distributions=("CLUSTERED", "REGIONAL"),
    ),
    (True, False): dict(  # many fine pleomorphic dots and segments, tight cluster
        count=(10, 31), dot_radius=(0.7, 1.6), extent=(20, 40), linear=(0.15, 0.5),
        elongation=(1.0, 3.0), layouts=("gaussian", "gaussian", "gaussian", "linear", "segmental"),
        types=("PLEOMORPHIC",), distributions=("CLUSTERED",),
    ),
}  # fmt: skip
# Dot centre spread along/across the cluster axis, as a fraction of its extent.
_LAYOUT_SPREAD = {"gaussian": (0.22, 0.22), "linear": (0.35, 0.07), "segmental": (0.3, 0.13)}
_LAYOUT_DISTRIBUTION = {"linear": "LINEAR", "segmental": "SEGMENTAL"}


def _sample_calcification(rng: np.random.Generator, malignant: bool, scale: float) -> Lesion:
    """Draw a calcification cluster as a list of dot/segment primitives."""
    plan = _CALC_PLANS[(malignant, bool(rng.random() < _HARD_FRACTION))]
    linear_share = rng.uniform(*plan["linear"])
    layout = str(rng.choice(plan["layouts"]))
    calc_type = "FINE_LINEAR_BRANCHING" if linear_share > 0.35 else str(rng.choice(plan["types"]))
    distribution = _LAYOUT_DISTRIBUTION.get(layout) or str(rng.choice(plan["distributions"]))
    extent = rng.uniform(*plan["extent"]) * scale
    spacing = plan["dot_radius"][1] * scale + 1.5  # keeps dots from merging
    centres = _cluster_positions(rng, int(rng.integers(*plan["count"])), extent, layout, spacing)
    dots = [_calc_dot(rng, centre, plan, linear_share, scale) for centre in centres]
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
        radius=max(_reach(points) + 2.6 * size for _, points, size, _ in dots)
        + _calc_mask_margin(scale)
        + 2.0,
        dots=dots,
    )


def _cluster_positions(rng, count: int, extent: float, layout: str, spacing: float):
    """Up to ``count`` dot centres within a disc of diameter ``extent``, ``spacing`` apart."""
    positions = [np.zeros(2)]  # one dot at the centre: a cluster is never empty
    for _ in range(count * 30):
        if len(positions) == count:
            break
        if layout == "uniform":
            angle, distance = rng.uniform(0, 2 * np.pi), 0.5 * extent * math.sqrt(rng.random())
            candidate = distance * np.array([math.cos(angle), math.sin(angle)])
        else:
            candidate = rng.normal(0, 1, 2) * np.array(_LAYOUT_SPREAD[layout]) * extent
        if np.linalg.norm(candidate) > 0.5 * extent:
            continue
        if all(np.linalg.norm(candidate - other) > spacing for other in positions):
            positions.append(candidate)
    return np.array(positions, dtype=np.float32)


def _calc_dot(rng, centre: np.ndarray, plan: dict, linear_share: float, scale: float) -> tuple:
    """One primitive: (kind, points, radius, intensity).

    An "ellipse" stores its centre and the ends of its two semi-axes; a
    "segment" stores a short line (points 0-1) and maybe a branch (points 2-3).
    """
    intensity = float(rng.uniform(0.6, 1.0))
    if rng.random() < linear_share:
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(3, 8) * max(scale, 0.6)
        tip = centre + length * np.array([math.cos(angle), math.sin(angle)])
        points = [centre, tip]
        if rng.random() < 0.4:
            branch = angle + rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)
            middle = 0.5 * (centre + tip)
            offshoot = 0.6 * length * np.array([math.cos(branch), math.sin(branch)])
            points += [middle, middle + offshoot]
        return ("segment", np.array(points, dtype=np.float32), 0.0, intensity)
    radius = max(rng.uniform(*plan["dot_radius"]) * scale, 0.6)
    elongation = math.sqrt(rng.uniform(*plan["elongation"]))
    angle = rng.uniform(0, np.pi)
    major = radius * elongation * np.array([math.cos(angle), math.sin(angle)])
    minor = radius / elongation * np.array([-math.sin(angle), math.cos(angle)])
    points = np.array([centre, centre + major, centre + minor], dtype=np.float32)
    return ("ellipse", points, radius, intensity)


def _calc_mask_margin(scale: float) -> float:
    """Dilation (px) of the cluster's convex hull in its ROI mask."""
    return max(3.0, 5.0 * scale)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _render_view(rng: np.random.Generator, patient: Patient, view: str, image_size):
    """Render one view: (uint8 image, {abnormality id: (lesion, 0/255 mask)}).

    Drawn with the chest wall on the left, then mirrored for RIGHT breasts so
    the breast sits on the side its laterality says.
    """
    scale = _scale(image_size)
    anatomy = _sample_anatomy(rng, view, image_size)
    image = _breast_background(rng, anatomy, patient.density, scale)
    masks, placed = {}, []
    # Largest first: small lesions still fit in the gaps the big ones leave.
    by_size = sorted(enumerate(patient.lesions, start=1), key=lambda item: -item[1].radius)
    for abnormality_id, lesion in by_size:
        centre = _find_spot(rng, lesion.radius, placed, anatomy)
        if centre is None:
            continue  # no room left in this view (rare): the row is simply absent
        placed.append((centre, lesion.radius))
        delta, mask = _draw_lesion(lesion, centre, rng.uniform(0, 2 * np.pi), image_size)
        image += delta
        masks[abnormality_id] = (lesion, mask)
    masks = dict(sorted(masks.items()))  # CSV rows in abnormality id order
    _add_marker(rng, image, anatomy, scale)
    noise_level = np.float32(rng.uniform(0.006, 0.012))
    image += rng.standard_normal(image.shape, dtype=np.float32) * noise_level
    image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    if patient.laterality == "RIGHT":
        image = np.ascontiguousarray(image[:, ::-1])
        masks = {key: (lesion, np.ascontiguousarray(mask[:, ::-1]))
                 for key, (lesion, mask) in masks.items()}  # fmt: skip
    return image, masks


def _sample_anatomy(rng: np.random.Generator, view: str, image_size) -> _Anatomy:
    """Half-ellipse against the chest wall; MLO views add a pectoral muscle."""
    height, width = image_size
    semi_x = width * rng.uniform(0.6, 0.88)
    semi_y = height * (rng.uniform(0.36, 0.45) if view == "CC" else rng.uniform(0.42, 0.5))
    center_y = height * (0.5 + rng.uniform(-0.04, 0.04) - (0.04 if view == "MLO" else 0.0))
    ys, xs = np.ogrid[0:height, 0:width]
    radius_map = np.sqrt((xs / semi_x) ** 2 + ((ys - center_y) / semi_y) ** 2)
    pectoral = None
    if view == "MLO":
        pectoral = (width * rng.uniform(0.18, 0.35), height * rng.uniform(0.35, 0.55))
    return _Anatomy(radius_map.astype(np.float32), (semi_x, semi_y), center_y, pectoral)


def _breast_background(rng, anatomy: _Anatomy, density: int, scale: float) -> np.ndarray:
    """Fatty base with skin-line falloff, fibroglandular texture, pectoral muscle."""
    size = anatomy.radius_map.shape
    # Tissue thickness, and so brightness, falls off towards the skin line.
    thickness = np.clip((1.0 - anatomy.radius_map) / 0.12, 0.0, 1.0)
    thickness = thickness * (2.0 - thickness)
    image = 0.015 + rng.uniform(0.26, 0.36) * thickness
    coarse = _smooth_noise(rng, size, 24 * scale)
    fine = _smooth_noise(rng, size, 6 * scale)
    tissue = np.clip(0.7 * coarse + 0.3 * fine + 0.35 * (density - 2.5), 0.0, None)
    # Glandular tissue concentrates behind the nipple, away from the skin.
    centrality = np.clip(1.15 - anatomy.radius_map, 0.0, 1.0)
    image += (0.025 + 0.025 * density) * tissue * thickness * centrality
    if anatomy.pectoral is not None:
        image += rng.uniform(0.1, 0.18) * _pectoral_mask(anatomy) * thickness
    return image.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size, cell: float) -> np.ndarray:
    """Unit-variance noise with blobs of about ``cell`` pixels (an upsampled coarse grid)."""
    height, width = size
    cell = max(cell, 2.0)
    grid_shape = (int(height / cell) + 3, int(width / cell) + 3)
    grid = rng.standard_normal(grid_shape, dtype=np.float32)
    noise = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return (noise - noise.mean()) / (noise.std() + 1e-6)


def _pectoral_mask(anatomy: _Anatomy) -> np.ndarray:
    height, width = anatomy.radius_map.shape
    leg_x, leg_y = anatomy.pectoral
    ys, xs = np.ogrid[0:height, 0:width]
    inside = (xs / leg_x + ys / leg_y < 1.0).astype(np.float32)
    return cv2.GaussianBlur(inside, (0, 0), 2.0)


def _find_spot(rng, radius: float, placed: list, anatomy: _Anatomy) -> np.ndarray | None:
    """A lesion centre whose bounding circle lies in the breast, clear of the others."""
    semi_x, semi_y = anatomy.semi_axes
    height, width = anatomy.radius_map.shape
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    circle = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for _ in range(300):
        centre = np.array([rng.uniform(0, semi_x), anatomy.center_y + rng.uniform(-semi_y, semi_y)])
        x, y = (centre + circle).T
        if x.min() < 2 or y.min() < 2 or x.max() > width - 3 or y.max() > height - 3:
            continue
        # 0.85 on the squared radius keeps lesions off the thin skin-line zone.
        if (((x / semi_x) ** 2 + ((y - anatomy.center_y) / semi_y) ** 2) >= 0.85).any():
            continue
        if _touches_pectoral(centre, radius, anatomy):
            continue
        if all(np.linalg.norm(centre - other) > radius + other_radius + 3
               for other, other_radius in placed):  # fmt: skip
            return centre
    return None


def _touches_pectoral(centre: np.ndarray, radius: float, anatomy: _Anatomy) -> bool:
    if anatomy.pectoral is None:
        return False
    leg_x, leg_y = anatomy.pectoral
    signed = (centre[0] / leg_x + centre[1] / leg_y - 1.0) / math.hypot(1 / leg_x, 1 / leg_y)
    return signed < radius + 3


def _draw_lesion(lesion: Lesion, centre, angle: float, image_size):
    """(intensity to add, 0/255 mask) of a lesion rotated by ``angle`` around ``centre``."""
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]], np.float32)

    def place(points):
        return points @ rotation.T + np.asarray(centre, np.float32)

    if lesion.abnormality_type == "mass":
        return _draw_mass(lesion, place, image_size)
    return _draw_calcification(lesion, place, image_size)


# cv2 drawing takes fixed-point coordinates with this many fraction bits, which
# gives sub-pixel positions (fine calcifications would look jagged otherwise).
_SHIFT = 4


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * (1 << _SHIFT)).astype(np.int32)


def _draw_mass(lesion: Lesion, place, image_size):
    outline = _fixed(place(lesion.outline))
    body = np.zeros(image_size, np.uint8)
    cv2.fillPoly(body, [outline], 255, cv2.LINE_AA, _SHIFT)
    body = cv2.GaussianBlur(body.astype(np.float32) / 255, (0, 0), lesion.margin_sigma)
    lines = np.zeros(image_size, np.uint8)
    for points, intensity in lesion.spicules:
        fixed = _fixed(place(points))
        value = int(255 * intensity)
        cv2.polylines(lines, [fixed], False, value, 1, cv2.LINE_AA, _SHIFT)
        # A thicker root makes the spicule taper towards its tip.
        cv2.polylines(lines, [fixed[:2]], False, value, 2, cv2.LINE_AA, _SHIFT)
    lines = cv2.GaussianBlur(lines.astype(np.float32) / 255, (0, 0), 0.6)
    mask = np.zeros(image_size, np.uint8)
    cv2.fillPoly(mask, [outline], 255, cv2.LINE_8, _SHIFT)
    return lesion.contrast * np.maximum(body, lines), mask


def _draw_calcification(lesion: Lesion, place, image_size):
    canvas = np.zeros(image_size, np.uint8)
    hull_points = []
    for kind, points, radius, intensity in lesion.dots:
        points = place(points)
        if kind == "segment":
            for segment in (points[:2], points[2:]):
                if len(segment):
                    cv2.polylines(canvas, [_fixed(segment)], False, int(255 * intensity), 1,
                                  cv2.LINE_AA, _SHIFT)  # fmt: skip
            hull_points.append(points)
        else:
            _draw_ellipse(canvas, points, int(255 * intensity))
            corners = np.array([[-1, -1], [1, 1], [-1, 1], [1, -1]], np.float32)
            hull_points.append(points[0] + 2.0 * radius * corners)
    canvas = cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), 0.5)
    mask = np.zeros(image_size, np.uint8)
    hull = cv2.convexHull(np.round(np.concatenate(hull_points)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    margin = int(round(_calc_mask_margin(_scale(image_size))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return lesion.contrast * canvas, cv2.dilate(mask, kernel)


def _draw_ellipse(canvas: np.ndarray, points: np.ndarray, value: int) -> None:
    centre, major_end, minor_end = points
    major = major_end - centre
    axes = np.array([np.linalg.norm(major), np.linalg.norm(minor_end - centre)])
    angle = math.degrees(math.atan2(major[1], major[0]))
    cv2.ellipse(canvas, tuple(_fixed(centre).tolist()), tuple(_fixed(axes).tolist()),
                angle, 0, 360, value, -1, cv2.LINE_AA, _SHIFT)  # fmt: skip


def _add_marker(rng, image: np.ndarray, anatomy: _Anatomy, scale: float) -> None:
    """Sometimes a bright film label in a background corner away from the chest wall."""
    if rng.random() >= _MARKER_PROBABILITY:
        return
    height, width = image.shape
    box_h = int(rng.uniform(8, 14) * scale) + 2
    box_w = int(rng.uniform(14, 28) * scale) + 2
    margin = int(rng.uniform(3, 10) * scale) + 1
    x0 = width - box_w - margin
    y0 = margin if rng.random() < 0.5 else height - box_h - margin
    box = (slice(y0, y0 + box_h), slice(x0, x0 + box_w))
    if anatomy.radius_map[box].min() < 1.05:
        return  # it would cover the breast
    image[box] = rng.uniform(0.8, 0.95)
    # A few dark strokes so it reads as lettering rather than a flat block.
    for x in range(x0 + 3, x0 + box_w - 2, 4):
        image[y0 + 2 : y0 + box_h - 2, x] = 0.3
