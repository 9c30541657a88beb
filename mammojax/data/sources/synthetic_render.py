"""How the synthetic mammograms look: lesion geometry and the drawing of a view.

``mammojax.data.sources.synthetic`` decides what each patient has (views,
density, lesions and their CSV labels) and writes the files. This module draws
the geometry that goes with a lesion's labels (mass outline, edge blur,
spicules, calcification dots and segments) and renders a view: anatomy,
background texture, the lesions with their ROI masks, an occasional film
marker and noise. Every function draws from the caller's generator in a fixed
order, so the pixels depend only on the seed.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

# Lesion sizes are given in pixels of a 384x304 image and scale with the size.
_REFERENCE_SIZE = (384, 304)
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
class _Anatomy:
  """Breast geometry of one view, canonical frame (chest wall at x = 0)."""

  radius_map: np.ndarray  # elliptical radius, < 1 inside the breast
  semi_axes: tuple[float, float]  # (x, y)
  center_y: float
  pectoral: tuple[float, float] | None  # triangle legs (x on top edge, y on chest wall)


# --------------------------------------------------------------------------
# Lesion geometry (drawn once per lesion, in its own frame)
# --------------------------------------------------------------------------


def size_scale(image_size) -> float:
  """Factor from the 384x304 reference sizes to ``image_size`` (the tighter side)."""
  return min(image_size[0] / _REFERENCE_SIZE[0], image_size[1] / _REFERENCE_SIZE[1])


def _reach(points: np.ndarray) -> float:
  """Largest distance of a lesion's points from its centre."""
  return float(np.linalg.norm(points, axis=1).max())


def mass_radius(outline: np.ndarray, spicules: list) -> float:
  """Bounding radius of a mass (body and spicules), used to place lesions apart."""
  return max([_reach(outline)] + [_reach(points) for points, _ in spicules]) + 2.0


# shape: (harmonic orders, amplitude range, aspect ratio range)
_OUTLINE_HARMONICS = {
    "ROUND": ((2, 3), (0.0, 0.04), (1.0, 1.15)),
    "OVAL": ((2, 3), (0.0, 0.04), (1.3, 1.7)),
    "LOBULATED": (None, (0.1, 0.2), (1.0, 1.4)),  # one lobe order drawn in 3..5
    "IRREGULAR": (tuple(range(2, 11)), (0.03, 0.14), (1.0, 1.5)),
    "ARCHITECTURAL_DISTORTION": (tuple(range(2, 11)), (0.03, 0.14), (1.0, 1.3)),
}


def mass_outline(rng: np.random.Generator, shape: str, margins: str, radius: float):
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


def margin_sigma(rng: np.random.Generator, margins: str, radius: float, scale: float) -> float:
  """Edge blur: sharp for circumscribed, a fraction of the radius for ill-defined."""
  if margins == "CIRCUMSCRIBED":
    return float(rng.uniform(0.5, 1.0) * max(scale, 0.5))
  if margins == "MICROLOBULATED":
    return float(rng.uniform(1.0, 2.0) * max(scale, 0.5))
  fraction = {"OBSCURED": (0.08, 0.15), "ILL_DEFINED": (0.15, 0.3), "SPICULATED": (0.08, 0.2)}
  return float(rng.uniform(*fraction[margins]) * radius)


def spicule_plan(rng, margins: str, shape: str, hard: bool) -> tuple[int, float, float]:
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


def spicules(rng, outline: np.ndarray, plan: tuple[int, float, float], scale: float) -> list:
  """Thin, slightly bent lines leaving the mass boundary outwards."""
  count, low, high = plan
  mean_radius = max(float(np.linalg.norm(outline, axis=1).mean()), 8 * scale)
  lines = []
  for _ in range(count):
    start = outline[int(rng.integers(len(outline)))] * 0.8
    direction = math.atan2(start[1], start[0]) + rng.uniform(-0.3, 0.3)
    half_length = 0.5 * rng.uniform(0.5, 1.4) * mean_radius
    bent = direction + rng.uniform(-0.25, 0.25)
    middle = start + half_length * np.array([math.cos(direction), math.sin(direction)])
    end = middle + half_length * np.array([math.cos(bent), math.sin(bent)])
    points = np.stack([start, middle, end]).astype(np.float32)
    lines.append((points, float(rng.uniform(low, high))))
  return lines


def calc_cluster(rng, plan: dict, layout: str, linear_share: float, scale: float) -> list:
  """Dot/segment primitives of a calcification cluster (see _calc_dot) drawn from ``plan``."""
  extent = rng.uniform(*plan["extent"]) * scale
  spacing = plan["dot_radius"][1] * scale + 1.5  # keeps dots from merging
  centres = _cluster_positions(rng, int(rng.integers(*plan["count"])), extent, layout, spacing)
  return [_calc_dot(rng, centre, plan, linear_share, scale) for centre in centres]


def calc_cluster_radius(dots: list, scale: float) -> float:
  """Bounding radius of a cluster with its ROI-mask margin, used to place lesions apart."""
  widest = max(_reach(points) + 2.6 * size for _, points, size, _ in dots)
  return widest + _calc_mask_margin(scale) + 2.0


# Dot centre spread along/across the cluster axis, as a fraction of its extent.
_LAYOUT_SPREAD = {"gaussian": (0.22, 0.22), "linear": (0.35, 0.07), "segmental": (0.3, 0.13)}


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


def render_view(rng, lesions: list[Lesion], density: int, laterality: str, view: str, image_size):
  """Render one view: (uint8 image, {abnormality id: (lesion, 0/255 mask)}).

  Drawn with the chest wall on the left, then mirrored for RIGHT breasts so
  the breast sits on the side its laterality says.
  """
  scale = size_scale(image_size)
  anatomy = _sample_anatomy(rng, view, image_size)
  image = _breast_background(rng, anatomy, density, scale)
  masks, placed = {}, []
  # Largest first: small lesions still fit in the gaps the big ones leave.
  by_size = sorted(enumerate(lesions, start=1), key=lambda item: -item[1].radius)
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
  if laterality == "RIGHT":
    image = np.ascontiguousarray(image[:, ::-1])
    masks = {
        key: (lesion, np.ascontiguousarray(mask[:, ::-1])) for key, (lesion, mask) in masks.items()
    }  # fmt: skip
  return image, masks


def _sample_anatomy(rng: np.random.Generator, view: str, image_size) -> _Anatomy:
  """Half-ellipse against the chest wall; MLO views add a pectoral muscle."""
  height, width = image_size
  semi_x = width * rng.uniform(0.6, 0.88)
  semi_y = height * (rng.uniform(0.36, 0.45) if view == "CC" else rng.uniform(0.42, 0.5))
  center_y = height * (0.5 + rng.uniform(-0.04, 0.04) - (0.04 if view == "MLO" else 0.0))
  ys, xs = np.ogrid[0:height, 0:width]
  radius_map = np.sqrt((xs / semi_x)**2 + ((ys - center_y) / semi_y)**2)
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
    if (((x / semi_x)**2 + ((y - anatomy.center_y) / semi_y)**2) >= 0.85).any():
      continue
    if _touches_pectoral(centre, radius, anatomy):
      continue
    if all(
        np.linalg.norm(centre - other) > radius + other_radius + 3
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
          cv2.polylines(canvas, [_fixed(segment)], False, int(255 * intensity), 1, cv2.LINE_AA,
                        _SHIFT)  # fmt: skip
      hull_points.append(points)
    else:
      _draw_ellipse(canvas, points, int(255 * intensity))
      corners = np.array([[-1, -1], [1, 1], [-1, 1], [1, -1]], np.float32)
      hull_points.append(points[0] + 2.0 * radius * corners)
  canvas = cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), 0.5)
  mask = np.zeros(image_size, np.uint8)
  hull = cv2.convexHull(np.round(np.concatenate(hull_points)).astype(np.int32))
  cv2.fillConvexPoly(mask, hull, 255)
  margin = int(round(_calc_mask_margin(size_scale(image_size))))
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
  return lesion.contrast * canvas, cv2.dilate(mask, kernel)


def _draw_ellipse(canvas: np.ndarray, points: np.ndarray, value: int) -> None:
  centre, major_end, minor_end = points
  major = major_end - centre
  axes = np.array([np.linalg.norm(major), np.linalg.norm(minor_end - centre)])
  angle = math.degrees(math.atan2(major[1], major[0]))
  cv2.ellipse(canvas, tuple(_fixed(centre).tolist()), tuple(_fixed(axes).tolist()), angle, 0, 360,
              value, -1, cv2.LINE_AA, _SHIFT)  # fmt: skip


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
    image[y0 + 2:y0 + box_h - 2, x] = 0.3
