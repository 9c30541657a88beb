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

FORMAT_VERSION = 1
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
    and concurrent callers do not interfere (the first rename wins).
    """
    _check_parameters(num_patients, seed, image_height, image_width)
    root = pathlib.Path(root)
    final = root / dataset_folder_name(num_patients, seed, image_height, image_width)
    if is_complete(final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_folders(root, final.name)
    temp = root / f"{_TEMP_PREFIX}{final.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_dataset(temp, num_patients, seed, image_height, image_width)
        _publish(temp, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final


def is_complete(folder: pathlib.Path) -> bool:
    """True when ``folder`` holds a fully written set (its marker is written last)."""
    return (folder / COMPLETE_MARKER).is_file()


def _check_parameters(num_patients, seed, image_height, image_width) -> None:
    if int(num_patients) != num_patients or num_patients < 1:
        raise ValueError(f"num_patients must be a positive integer, got {num_patients!r}.")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if image_height < _MIN_SIZE[0] or image_width < _MIN_SIZE[1]:
        raise ValueError(
            f"Image size {image_height}x{image_width} is too small for visible lesions; "
            f"use at least {_MIN_SIZE[0]}x{_MIN_SIZE[1]} (default 384x304)."
        )


def _publish(temp: pathlib.Path, final: pathlib.Path) -> None:
    """Rename the finished set into place unless another process got there first."""
    if final.exists() and not is_complete(final):
        # Only a manual edit can leave an unmarked folder at the final name
        # (publication is a single rename); move it aside, then delete it.
        trash = final.with_name(f"{_TEMP_PREFIX}{final.name}-discarded-{uuid.uuid4().hex[:8]}")
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(temp, final)
    except OSError:
        if not is_complete(final):
            raise
        # A concurrent caller published the same deterministic content.


def _remove_stale_temp_folders(root: pathlib.Path, name: str) -> None:
    """Delete temp folders left by killed runs of this host (their pid is gone)."""
    host = socket.gethostname()
    for folder in root.glob(f"{_TEMP_PREFIX}{name}-{host}-*"):
        pid_text = folder.name[len(f"{_TEMP_PREFIX}{name}-{host}-") :].split("-")[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# --------------------------------------------------------------------------
# Writing the files
# --------------------------------------------------------------------------


def _write_dataset(folder: pathlib.Path, num_patients, seed, image_height, image_width) -> None:
    """Write images, masks, crops, the four CSVs and finally the marker."""
    folder.mkdir(parents=True)
    rows = {key: [] for key in CSV_FILE_NAMES}
    num_images = 0
    for index in range(num_patients):
        rng = np.random.default_rng([seed, index])
        patient = sample_patient(rng, index, (image_height, image_width))
        for view in patient.views:
            image, masks = render_view(rng, patient, view, (image_height, image_width))
            rows[(patient.abnormality_type, patient.split)] += _write_view(
                folder, patient, view, image, masks
            )
            num_images += 1
    for key, key_rows in rows.items():
        _write_csv(folder / CSV_FILE_NAMES[key], key[0], key_rows)
    summary = {
        "format_version": FORMAT_VERSION,
        "num_patients": num_patients,
        "seed": seed,
        "image_height": image_height,
        "image_width": image_width,
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
# Patients and lesions
# --------------------------------------------------------------------------


def sample_patient(rng: np.random.Generator, index: int, image_size: tuple[int, int]) -> Patient:
    """Draw a patient: split, side, views, density and its abnormalities."""
    scale = _scale(image_size)
    views = ("CC", "MLO") if rng.random() < 0.7 else (str(rng.choice(["CC", "MLO"])),)
    abnormality_type = "mass" if rng.random() < 0.5 else "calcification"
    sampler = sample_mass if abnormality_type == "mass" else sample_calcification
    num_lesions = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
    return Patient(
        index=index,
        patient_id=f"P_{index + 1:05d}",
        # A fixed pattern gives exactly ~25% test patients even for tiny sets.
        split="test" if index % 4 == 3 else "train",
        laterality="LEFT" if rng.random() < 0.5 else "RIGHT",
        views=views,
        abnormality_type=abnormality_type,
        density=int(rng.choice([1, 2, 3, 4], p=[0.15, 0.4, 0.3, 0.15])),
        lesions=[sampler(rng, rng.random() < 0.5, scale) for _ in range(num_lesions)],
    )


def _scale(image_size: tuple[int, int]) -> float:
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


def _mass_style(rng: np.random.Generator, malignant: bool, hard: bool) -> tuple[str, str]:
    """(mass shape, mass margins) in the CSV vocabulary."""
    if not malignant and not hard:
        return str(rng.choice(["ROUND", "OVAL"])), str(
            rng.choice(["CIRCUMSCRIBED", "OBSCURED"], p=[0.75, 0.25])
        )
    if not malignant:  # lobulated / irregular benign, a few faint spicules
        return str(rng.choice(["LOBULATED", "IRREGULAR"])), str(
            rng.choice(["ILL_DEFINED", "MICROLOBULATED", "OBSCURED"], p=[0.5, 0.25, 0.25])
        )
    if hard:  # malignant that looks benign: smooth outline, few or faint spicules
        return str(rng.choice(["OVAL", "LOBULATED", "ROUND"])), str(
            rng.choice(["MICROLOBULATED", "OBSCURED", "ILL_DEFINED"])
        )
    if rng.random() < 0.2:
        return "ARCHITECTURAL_DISTORTION", "SPICULATED"
    return "IRREGULAR", str(rng.choice(["SPICULATED", "ILL_DEFINED"], p=[0.65, 0.35]))


def sample_mass(rng: np.random.Generator, malignant: bool, scale: float) -> Lesion:
    """Draw a mass: outline from its shape, edge blur and spicules from its margins."""
    hard = rng.random() < _HARD_FRACTION
    shape, margins = _mass_style(rng, malignant, hard)
    radius = rng.uniform(12, 28) if malignant else rng.uniform(10, 24)
    radius *= scale
    if shape == "ARCHITECTURAL_DISTORTION":
        radius *= 0.6  # a small dense centre; the spicules carry the finding
    outline = _mass_outline(rng, shape, margins, radius)
    spicules = _spicules(rng, outline, margins, shape, hard, scale)
    contrast = rng.uniform(0.06, 0.2) if not malignant else rng.uniform(0.07, 0.22)
    if margins == "OBSCURED":
        contrast *= 0.75
    pathology = _pathology(rng, malignant)
    extent = max([_reach(outline)] + [_reach(points) for points, _ in spicules])
    return Lesion(
        abnormality_type="mass",
        pathology=pathology,
        shape=shape,
        margins=margins,
        assessment=_assessment(rng, pathology),
        subtlety=_subtlety(rng, contrast, 0.05, 0.22),
        contrast=float(contrast),
        radius=float(extent) + 2.0,
        outline=outline,
        margin_sigma=_margin_sigma(rng, margins, radius, scale),
        spicules=spicules,
    )


def _reach(points: np.ndarray) -> float:
    return float(np.linalg.norm(points, axis=1).max())


def _mass_outline(rng: np.random.Generator, shape: str, margins: str, radius: float) -> np.ndarray:
    """Closed polygon r(theta) = radius * (1 + sum of harmonics), stretched to an aspect."""
    theta = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    harmonics = {  # shape: (orders, amplitude range, aspect range)
        "ROUND": ([2, 3], (0.0, 0.04), (1.0, 1.15)),
        "OVAL": ([2, 3], (0.0, 0.04), (1.3, 1.7)),
        "LOBULATED": ([int(rng.integers(3, 6))], (0.1, 0.2), (1.0, 1.4)),
        "IRREGULAR": (list(range(2, 11)), (0.03, 0.14), (1.0, 1.5)),
        "ARCHITECTURAL_DISTORTION": (list(range(2, 11)), (0.03, 0.14), (1.0, 1.3)),
    }[shape]
    orders, (low, high), (aspect_low, aspect_high) = harmonics
    relative = np.ones_like(theta)
    for order in orders:
        amplitude = rng.uniform(low, high) / (1 if len(orders) < 3 else math.sqrt(order / 2))
        relative += amplitude * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    if margins == "MICROLOBULATED":
        order = int(rng.integers(12, 20))
        relative += rng.uniform(0.04, 0.07) * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    relative = np.clip(relative, 0.45, None)
    aspect = math.sqrt(rng.uniform(aspect_low, aspect_high))
    points = np.stack(
        [radius * relative * np.cos(theta) * aspect, radius * relative * np.sin(theta) / aspect],
        axis=1,
    )
    return points.astype(np.float32)


def _margin_sigma(rng: np.random.Generator, margins: str, radius: float, scale: float) -> float:
    """Edge blur: sharp for circumscribed, a fraction of the radius for ill-defined."""
    if margins == "CIRCUMSCRIBED":
        return float(rng.uniform(0.5, 1.0) * max(scale, 0.5))
    if margins == "MICROLOBULATED":
        return float(rng.uniform(1.0, 2.0) * max(scale, 0.5))
    fraction = {"OBSCURED": (0.08, 0.15), "ILL_DEFINED": (0.15, 0.3), "SPICULATED": (0.08, 0.2)}
    return float(rng.uniform(*fraction[margins]) * radius)


def _spicule_plan(rng, margins: str, shape: str, hard: bool) -> tuple[int, float, float]:
    """(count, intensity low, intensity high) of the radiating lines."""
    if shape == "ARCHITECTURAL_DISTORTION":
        return int(rng.integers(10, 22)), 0.6, 1.0
    if margins == "SPICULATED":
        return int(rng.integers(6, 21)), 0.5, 1.0
    if margins == "ILL_DEFINED":
        return int(rng.integers(0, 6)), 0.2, 0.6
    if hard:
        return int(rng.integers(0, 3)), 0.2, 0.45
    return 0, 0.0, 0.0


def _spicules(rng, outline: np.ndarray, margins: str, shape: str, hard: bool, scale: float) -> list:
    """Thin slightly bent lines leaving the mass boundary outwards."""
    count, low, high = _spicule_plan(rng, margins, shape, hard)
    mean_radius = float(np.linalg.norm(outline, axis=1).mean())
    spicules = []
    for _ in range(count):
        start = outline[int(rng.integers(len(outline)))] * 0.8
        direction = math.atan2(start[1], start[0]) + rng.uniform(-0.3, 0.3)
        length = rng.uniform(0.5, 1.4) * max(mean_radius, 8 * scale)
        bend = rng.uniform(-0.25, 0.25)
        middle = start + 0.5 * length * np.array([math.cos(direction), math.sin(direction)])
        end = middle + 0.5 * length * np.array([math.cos(direction + bend), math.sin(direction + bend)])
        spicules.append((np.stack([start, middle, end]).astype(np.float32), rng.uniform(low, high)))
    return spicules


def _calc_plan(rng: np.random.Generator, malignant: bool, hard: bool) -> dict:
    """Count, size, spread and vocabulary of a calcification cluster."""
    if not malignant and not hard:  # few coarse round dots over a wide area
        return dict(count=(3, 9), dot_radius=(2.0, 4.0), extent=(35, 60), linear=0.0,
                    elongation=(1.0, 1.3), layout="uniform",
                    shape=rng.choice(["COARSE", "ROUND_AND_REGULAR", "LARGE_RODLIKE"], p=[0.5, 0.4, 0.1]),
                    margins=rng.choice(["SCATTERED", "REGIONAL"]))  # fmt: skip
    if not malignant:  # smaller, more numerous, clustered
        return dict(count=(6, 15), dot_radius=(1.3, 2.5), extent=(25, 45), linear=0.0,
                    elongation=(1.0, 1.5), layout="gaussian",
                    shape=rng.choice(["PUNCTATE", "ROUND_AND_REGULAR"]),
                    margins=rng.choice(["CLUSTERED", "REGIONAL"]))  # fmt: skip
    if hard:  # fewer, coarser, looser than typical malignant
        return dict(count=(5, 13), dot_radius=(1.2, 2.4), extent=(30, 55), linear=0.08,
                    elongation=(1.0, 1.6), layout="gaussian",
                    shape=rng.choice(["AMORPHOUS", "PUNCTATE"]),
                    margins=rng.choice(["CLUSTERED", "REGIONAL"]))  # fmt: skip
    layout = str(rng.choice(["gaussian", "linear", "segmental"], p=[0.6, 0.2, 0.2]))
    linear = rng.uniform(0.15, 0.5)
    return dict(count=(10, 31), dot_radius=(0.7, 1.6), extent=(20, 40), linear=linear,
                elongation=(1.0, 3.0), layout=layout,
                shape="FINE_LINEAR_BRANCHING" if linear > 0.35 else "PLEOMORPHIC",
                margins={"gaussian": "CLUSTERED", "linear": "LINEAR", "segmental": "SEGMENTAL"}[layout])  # fmt: skip


def sample_calcification(rng: np.random.Generator, malignant: bool, scale: float) -> Lesion:
    """Draw a calcification cluster as a list of dot/segment primitives."""
    plan = _calc_plan(rng, malignant, rng.random() < _HARD_FRACTION)
    count = int(rng.integers(*plan["count"]))
    extent = rng.uniform(*plan["extent"]) * scale
    centres = _cluster_positions(rng, count, extent, plan["layout"])
    dots = [_calc_dot(rng, centre, plan, scale) for centre in centres]
    contrast = rng.uniform(0.18, 0.4)
    pathology = _pathology(rng, malignant)
    reach = max(_reach(points) + 2.6 * size for _, points, size, _ in dots)
    return Lesion(
        abnormality_type="calcification",
        pathology=pathology,
        shape=str(plan["shape"]),
        margins=str(plan["margins"]),
        assessment=_assessment(rng, pathology),
        subtlety=_subtlety(rng, contrast, 0.18, 0.4),
        contrast=float(contrast),
        radius=float(reach) + _calc_mask_margin(scale) + 2.0,
        dots=dots,
    )


def _cluster_positions(rng, count: int, extent: float, layout: str) -> np.ndarray:
    """Dot centres inside a disc of diameter ``extent``, kept slightly apart."""
    spread = {"uniform": None, "gaussian": (0.22, 0.22), "linear": (0.35, 0.07), "segmental": (0.3, 0.13)}
    positions = []
    for _ in range(count * 20):
        if len(positions) == count:
            break
        if spread[layout] is None:
            angle, distance = rng.uniform(0, 2 * np.pi), 0.5 * extent * math.sqrt(rng.random())
            candidate = distance * np.array([math.cos(angle), math.sin(angle)])
        else:
            candidate = rng.normal(0, 1, 2) * np.array(spread[layout]) * extent
            if np.linalg.norm(candidate) > 0.5 * extent:
                continue
        # Keep dots from merging so their number stays what was drawn.
        if all(np.linalg.norm(candidate - other) > 3.0 for other in positions):
            positions.append(candidate)
    return np.array(positions, dtype=np.float32)


def _calc_dot(rng, centre: np.ndarray, plan: dict, scale: float) -> tuple:
    """One primitive: ("ellipse", points, size, intensity) or ("segment", points, 0, intensity).

    An ellipse stores its centre and its two semi-axis end points; a segment
    stores a short polyline, sometimes with a branch.
    """
    intensity = float(rng.uniform(0.6, 1.0))
    if rng.random() < plan["linear"]:
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(3, 8) * max(scale, 0.6)
        tip = centre + length * np.array([math.cos(angle), math.sin(angle)])
        points = [centre, tip]
        if rng.random() < 0.4:  # branch from the middle
            branch_angle = angle + rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)
            middle = 0.5 * (centre + tip)
            points += [middle, middle + 0.6 * length * np.array([math.cos(branch_angle), math.sin(branch_angle)])]
        return ("segment", np.array(points, dtype=np.float32), 0.0, intensity)
    radius = max(rng.uniform(*plan["dot_radius"]) * scale, 0.6)
    elongation = rng.uniform(*plan["elongation"])
    angle = rng.uniform(0, np.pi)
    major = radius * math.sqrt(elongation) * np.array([math.cos(angle), math.sin(angle)])
    minor = radius / math.sqrt(elongation) * np.array([-math.sin(angle), math.cos(angle)])
    points = np.array([centre, centre + major, centre + minor], dtype=np.float32)
    return ("ellipse", points, radius, intensity)


def _calc_mask_margin(scale: float) -> float:
    return max(3.0, 5.0 * scale)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def render_view(
    rng: np.random.Generator, patient: Patient, view: str, image_size: tuple[int, int]
) -> tuple[np.ndarray, dict[int, tuple[Lesion, np.ndarray]]]:
    """Render one view: uint8 image and {abnormality id: (lesion, 0/255 mask)}.

    Drawn with the chest wall on the left, then mirrored for RIGHT breasts so
    the breast sits on the side its laterality says.
    """
    scale = _scale(image_size)
    anatomy = _sample_anatomy(rng, view, image_size)
    image = _breast_background(rng, anatomy, patient.density, scale)
    masks = {}
    placed = []
    for abnormality_id, lesion in enumerate(patient.lesions, start=1):
        spot = _find_spot(rng, lesion.radius, placed, anatomy)
        if spot is None:
            continue  # no room left in this view; rare, the row is simply absent
        placed.append((spot, lesion.radius))
        delta, mask = _draw_lesion(lesion, spot, rng.uniform(0, 2 * np.pi), image_size)
        image += delta
        masks[abnormality_id] = (lesion, mask)
    _add_marker(rng, image, anatomy, scale)
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(0.006, 0.012))
    image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    if patient.laterality == "RIGHT":
        image = np.ascontiguousarray(image[:, ::-1])
        masks = {key: (lesion, np.ascontiguousarray(mask[:, ::-1])) for key, (lesion, mask) in masks.items()}
    return image, masks


def _sample_anatomy(rng: np.random.Generator, view: str, image_size: tuple[int, int]) -> _Anatomy:
    """Half-ellipse against the chest wall; MLO views add a pectoral muscle."""
    height, width = image_size
    semi_x = width * rng.uniform(0.6, 0.88)
    semi_y = height * (rng.uniform(0.36, 0.45) if view == "CC" else rng.uniform(0.42, 0.5))
    center_y = height * (0.5 + rng.uniform(-0.04, 0.04) - (0.04 if view == "MLO" else 0.0))
    ys, xs = np.ogrid[0:height, 0:width]
    radius_map = np.sqrt((xs / semi_x) ** 2 + ((ys - center_y) / semi_y) ** 2).astype(np.float32)
    pectoral = None
    if view == "MLO":
        pectoral = (width * rng.uniform(0.18, 0.35), height * rng.uniform(0.35, 0.55))
    return _Anatomy(radius_map, (semi_x, semi_y), center_y, pectoral)


def _breast_background(rng, anatomy: _Anatomy, density: int, scale: float) -> np.ndarray:
    """Fatty base with skin-line falloff, fibroglandular texture, pectoral muscle."""
    height, width = anatomy.radius_map.shape
    # Tissue thickness (and so brightness) falls off towards the skin line.
    thickness = np.clip((1.0 - anatomy.radius_map) / 0.12, 0.0, 1.0)
    thickness = thickness * (2.0 - thickness)
    image = 0.015 + rng.uniform(0.26, 0.36) * thickness
    coarse = _smooth_noise(rng, (height, width), 24 * scale)
    fine = _smooth_noise(rng, (height, width), 6 * scale)
    tissue = np.clip(0.7 * coarse + 0.3 * fine + 0.35 * (density - 2.5), 0.0, None)
    # Glandular tissue concentrates behind the nipple, away from the skin.
    centrality = np.clip(1.15 - anatomy.radius_map, 0.0, 1.0)
    image += (0.025 + 0.025 * density) * tissue * thickness * centrality
    if anatomy.pectoral is not None:
        image += rng.uniform(0.1, 0.18) * _pectoral_mask(anatomy) * thickness
    return image.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: float) -> np.ndarray:
    """Unit-variance noise with structures of about ``cell`` pixels (upsampled grid)."""
    height, width = size
    cell = max(cell, 2.0)
    grid = rng.standard_normal((int(height / cell) + 3, int(width / cell) + 3), dtype=np.float32)
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
    circle = radius * np.stack([np.cos(np.linspace(0, 2 * np.pi, 16)), np.sin(np.linspace(0, 2 * np.pi, 16))], 1)
    for _ in range(300):
        centre = np.array([rng.uniform(0, semi_x), anatomy.center_y + rng.uniform(-semi_y, semi_y)])
        points = centre + circle
        if points.min() < 2 or points[:, 0].max() > width - 3 or points[:, 1].max() > height - 3:
            continue
        inside = ((points[:, 0] / semi_x) ** 2 + ((points[:, 1] - anatomy.center_y) / semi_y) ** 2) < 0.85
        if not inside.all() or _touches_pectoral(centre, radius, anatomy):
            continue
        if all(np.linalg.norm(centre - other) > radius + other_radius + 3 for other, other_radius in placed):
            return centre
    return None


def _touches_pectoral(centre: np.ndarray, radius: float, anatomy: _Anatomy) -> bool:
    if anatomy.pectoral is None:
        return False
    leg_x, leg_y = anatomy.pectoral
    signed = (centre[0] / leg_x + centre[1] / leg_y - 1.0) / math.hypot(1 / leg_x, 1 / leg_y)
    return signed < radius + 3


def _draw_lesion(lesion: Lesion, centre, angle: float, image_size) -> tuple[np.ndarray, np.ndarray]:
    """(intensity to add, 0/255 mask) of a lesion rotated by ``angle`` around ``centre``."""
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)

    def place(points):
        return points @ rotation.T + np.asarray(centre, np.float32)

    if lesion.abnormality_type == "mass":
        return _draw_mass(lesion, place, image_size)
    return _draw_calcification(lesion, place, image_size)


# Sub-pixel drawing: cv2 takes fixed-point coordinates with this many fraction bits.
_SHIFT = 4


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << _SHIFT)).astype(np.int32)


def _draw_mass(lesion: Lesion, place, image_size) -> tuple[np.ndarray, np.ndarray]:
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


def _draw_calcification(lesion: Lesion, place, image_size) -> tuple[np.ndarray, np.ndarray]:
    canvas = np.zeros(image_size, np.uint8)
    hull_points = []
    for kind, points, radius, intensity in lesion.dots:
        points = place(points)
        value = int(255 * intensity)
        if kind == "segment":
            fixed = _fixed(points)
            cv2.polylines(canvas, [fixed[:2]], False, value, 1, cv2.LINE_AA, _SHIFT)
            if len(fixed) > 2:
                cv2.polylines(canvas, [fixed[2:]], False, value, 1, cv2.LINE_AA, _SHIFT)
            hull_points.append(points)
        else:
            _draw_ellipse(canvas, points, value)
            hull_points.append(points[0] + np.array([[-radius, -radius], [radius, radius], [-radius, radius], [radius, -radius]]) * 1.8)
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
    axes = (float(np.linalg.norm(major)), float(np.linalg.norm(minor_end - centre)))
    angle = math.degrees(math.atan2(major[1], major[0]))
    cv2.ellipse(
        canvas, tuple(_fixed(centre).tolist()), tuple(_fixed(np.array(axes)).tolist()),
        angle, 0, 360, value, -1, cv2.LINE_AA, _SHIFT,
    )  # fmt: skip


def _add_marker(rng, image: np.ndarray, anatomy: _Anatomy, scale: float) -> None:
    """Sometimes a bright film label in a background corner away from the chest wall."""
    if rng.random() >= _MARKER_PROBABILITY:
        return
    height, width = image.shape
    box_h, box_w = int(rng.uniform(8, 14) * scale) + 2, int(rng.uniform(14, 28) * scale) + 2
    margin = int(rng.uniform(3, 10) * scale) + 1
    x0 = width - box_w - margin
    y0 = margin if rng.random() < 0.5 else height - box_h - margin
    corners = anatomy.radius_map[[y0, y0, y0 + box_h - 1, y0 + box_h - 1], [x0, x0 + box_w - 1, x0, x0 + box_w - 1]]
    if corners.min() < 1.05:
        return  # would cover the breast
    image[y0 : y0 + box_h, x0 : x0 + box_w] = rng.uniform(0.8, 0.95)
    # A few dark strokes so it reads as lettering rather than a flat block.
    for stroke in range(1, box_w // 4):
        x = x0 + 4 * stroke - 1
        image[y0 + 2 : y0 + box_h - 2, x] = 0.3
