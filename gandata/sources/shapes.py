"""``synth:shapes``: the procedural dataset gandata builds by default.

Each image is one filled shape (circle, square, triangle, star or cross) on a
varied background: a solid colour, a linear or radial gradient, low-frequency
colour noise or faint stripes, always with a little fine grain. Shape colour,
size, position, rotation, shading, an optional outline and an optional soft
drop shadow are random per image. Shapes are drawn at 2-4x the target size and
box-downscaled, so edges are anti-aliased.

The dataset is meant to be worth training a (conditional) GAN on while keeping
the classes unmistakable at 32 px: the shape always contrasts with its
background by a minimum luminance gap (so it survives conversion to grayscale),
its circumscribed circle spans 45-85% of the image side, and it lies (almost)
fully inside the image.

Determinism: image ``i`` depends only on the seed, ``i``, its class and the
image size, never on how the work is partitioned or which machine renders it;
which index gets which class is a seeded shuffle of the class counts, so
classes are interleaved. Matrix products are summed in a fixed order
(``gandata.util.ordered_product``), since BLAS kernels round differently per
CPU; numpy's float32 ``exp`` and ``sin`` agree on every x86-64 CPU with AVX2
and FMA (2013 on), and older ones compute them without FMA.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator
from urllib.parse import parse_qsl

import numpy as np
from PIL import Image, ImageDraw

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.base import Partition, SourceContext
from gandata.util.ordered_product import ordered_matmul

__all__ = [
    "GENERATOR_VERSION",
    "KINDS",
    "SHAPE_CLASSES",
    "PARTITION_SIZE",
    "SynthShapesSource",
    "class_counts",
    "open_shapes",
    "render_shape",
]

# Bump whenever the drawing code changes what any image looks like: it is part
# of the fingerprint, so staged partitions from an older generator are redone.
# 2: the noise and shadow products are summed in a fixed order, not by BLAS
# (whose kernels gave other pixels on other CPUs).
GENERATOR_VERSION = 2

KINDS = ("shapes",)
SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross")
PARTITION_SIZE = 512
SYNTH_LICENSE = "CC0-1.0"

# Defaults of the parameters that do not come from the build context.
DEFAULT_COUNT = 5000
DEFAULT_IMBALANCE = 1.0
MAX_COUNT = 10_000_000  # the label array (and its shuffle) is held in memory
PARAMS = ("count", "size", "seed", "imbalance", "classes")

# Stream tags mixed into the seed so the per-image generators and the label
# shuffle never share a random stream (SeedSequence pads with zeros, so the
# tags must sit before the index, not after it).
_IMAGE_STREAM = 1
_LABEL_STREAM = 2

# Minimum luma gap between the shape's colour and every background colour.
_MIN_LUMA_GAP = 0.30
# Shape extent (diameter of the circumscribed circle) as a fraction of the
# side. Below ~45% a 32 px star or cross is ~14 px across and starts to read
# as a blob; a classifier trained on 32 px images confused them noticeably.
_SIZE_RANGE = (0.45, 0.85)


# ---------------------------------------------------------------------------
# Parameters and URI parsing


def _fail(uri: str, message: str) -> SourceError:
    return SourceError(f"{uri}: {message}")


def _parse_int(uri: str, name: str, value: Any, lo: int, hi: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _fail(uri, f"parameter {name}={value!r} is not an integer") from None
    if not lo <= number <= hi:
        raise _fail(uri, f"parameter {name}={number} is out of range ({lo}..{hi})")
    return number


def _parse_imbalance(uri: str, value: Any) -> float:
    try:
        ratio = float(str(value).strip())
    except ValueError:
        raise _fail(uri, f"parameter imbalance={value!r} is not a number") from None
    if not math.isfinite(ratio) or ratio < 1.0:
        raise _fail(uri, f"parameter imbalance={value!r} must be a finite number >= 1 (max/min class count)")
    return ratio


def _parse_classes(uri: str, value: Any) -> tuple[str, ...]:
    names = [n.strip().lower() for n in str(value).replace(" ", ",").split(",") if n.strip()]
    if not names:
        raise _fail(uri, f"parameter classes={value!r} names no class (known: {', '.join(SHAPE_CLASSES)})")
    unknown = [n for n in names if n not in SHAPE_CLASSES]
    if unknown:
        raise _fail(uri, f"parameter classes: unknown class {', '.join(map(repr, unknown))} (known: {', '.join(SHAPE_CLASSES)})")
    if len(set(names)) != len(names):
        raise _fail(uri, f"parameter classes={value!r} names a class twice")
    # Label order is always the canonical order, whatever order the user wrote.
    return tuple(n for n in SHAPE_CLASSES if n in names)


def _split_uri(uri: str) -> tuple[str, dict[str, str]]:
    """Return the kind and the query parameters of a ``synth:`` URI."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() != "synth":
        raise SourceError(f"{uri}: not a synth: URI (expected synth:shapes)")
    rest = rest[2:] if rest.startswith("//") else rest
    kind, _, query = rest.partition("?")
    kind = kind.strip().strip("/").lower()
    if kind not in KINDS:
        raise _fail(uri, f"unknown synth kind {kind!r} (known: {', '.join(KINDS)})")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _fail(uri, f"cannot parse the query {query!r} (expected key=value&key=value)") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        key = key.strip().lower()
        if key not in PARAMS:
            raise _fail(uri, f"unknown parameter {key!r} (known: {', '.join(PARAMS)})")
        if key in params:
            raise _fail(uri, f"parameter {key} is given twice")
        params[key] = value
    return kind, params


def class_counts(count: int, n_classes: int, imbalance: float) -> list[int]:
    """Per-class image counts: geometric decay from the first class to the
    last so that ``max/min`` is ``imbalance`` (up to integer rounding), the
    counts sum to ``count``, and every class has at least one image."""
    if n_classes < 1:
        raise ValueError("n_classes must be at least 1")
    if count < n_classes:
        raise ValueError(f"count {count} is smaller than the number of classes {n_classes}")
    if n_classes == 1:
        return [count]
    weights = imbalance ** (-np.arange(n_classes) / (n_classes - 1))
    raw = count * weights / weights.sum()
    counts = np.floor(raw).astype(np.int64)
    # Largest remainder rounding keeps the total exact; ties go to lower ids.
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: count - int(counts.sum())]] += 1
    while (counts < 1).any():
        counts[int(np.argmin(counts))] += 1
        counts[int(np.argmax(counts))] -= 1
    return [int(c) for c in counts]


_cached_counts = lru_cache(maxsize=16)(class_counts)


@lru_cache(maxsize=4)
def _label_ids(seed: int, counts: tuple[int, ...]) -> np.ndarray:
    """Class id of every index: the counts, shuffled with the seed. Cached
    because every partition of a worker needs the same array."""
    ids = np.repeat(np.arange(len(counts), dtype=np.int16), counts)
    rng = np.random.default_rng([seed, _LABEL_STREAM])
    ids = ids[rng.permutation(len(ids))]
    ids.flags.writeable = False
    return ids


# ---------------------------------------------------------------------------
# Drawing


class _Draws:
    """Uniform random numbers drawn in one batch and handed out one by one:
    a Generator call per scalar costs microseconds, a list item nanoseconds."""

    __slots__ = ("_next",)

    def __init__(self, rng: np.random.Generator, n: int = 64) -> None:
        self._next = iter(rng.random(n).tolist()).__next__

    def u(self, lo: float = 0.0, hi: float = 1.0) -> float:
        """A uniform float in [lo, hi)."""
        return lo + (hi - lo) * self._next()

    def chance(self, p: float) -> bool:
        """True with probability p."""
        return self._next() < p

    def pick(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        return min(int(self._next() * n), n - 1)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1] (x, y), shape (size, size)."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(axis, axis)
    x.flags.writeable = y.flags.writeable = False
    return x, y


# Low-frequency fields (value noise, drop shadows) are computed on a grid of
# at most this many cells a side and upsampled: they have no detail finer
# than ~2% of the image, and full-size matrix products would cost size^3 and,
# worse, make OpenBLAS start threads for every image (ruinous in a worker
# pool). The products stay under OpenBLAS's threading threshold
# (m*n*k < 262144): noise is 64 x 18 x 64, shadows 48 x 48 x 48.
_COARSE_NOISE = 64
_COARSE_SHADOW = 48


@lru_cache(maxsize=32)
def _spline_matrix(size: int, cells: int) -> np.ndarray:
    """(size, cells+3) cubic B-spline weights that upsample a line of
    cells+3 control values to ``size`` samples: ``W @ G @ W.T`` is smooth 2-D
    value noise."""
    pos = (np.arange(size, dtype=np.float64) + 0.5) / size * cells
    d = np.abs(pos[:, None] - (np.arange(cells + 3) - 1.0)[None, :])
    w = np.where(d < 1.0, (4.0 - 6.0 * d**2 + 3.0 * d**3) / 6.0, np.where(d < 2.0, (2.0 - d) ** 3 / 6.0, 0.0))
    return w.astype(np.float32)


def _blur_matrix(size: int, shift: float, sigma: float) -> np.ndarray:
    """(size, size) matrix M with ``(M @ v)[i] = sum_j g(i - j - shift) v[j]``:
    moves a signal by ``shift`` cells and blurs it with a Gaussian of
    ``sigma`` cells, so ``My @ mask @ Mx.T`` is a soft drop shadow."""
    idx = np.arange(size, dtype=np.float32)
    d = idx[:, None] - idx[None, :] - np.float32(shift)
    m = np.exp(d * d * np.float32(-0.5 / (sigma * sigma)))
    m *= np.float32(1.0 / (math.sqrt(2.0 * math.pi) * sigma))
    return m


def _upsample(field: np.ndarray, size: int) -> np.ndarray:
    """A smooth float32 field resized to size x size (bicubic, in PIL's C
    code: no BLAS, no threads)."""
    if field.shape[0] == size:
        return field
    img = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32)).resize((size, size), Image.Resampling.BICUBIC)
    return np.frombuffer(img.tobytes(), dtype=np.float32).reshape(size, size)


def _supersample(size: int) -> int:
    # 4x gives 17 coverage levels per edge pixel (smooth edges at GAN sizes);
    # big images need less and would otherwise cost a lot of memory per mask.
    if size <= 128:
        return 4
    return 2 if size <= 1024 else 1


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32)


def _luma(rgb: np.ndarray) -> float:
    """Rec. 601 luma, the weights of PIL's (and the pipeline's) "L" mode."""
    r, g, b = rgb.tolist()
    return 0.299 * r + 0.587 * g + 0.114 * b


def _with_luma(rgb: np.ndarray, target: float) -> np.ndarray:
    """The colour moved to exactly the target luma, keeping its hue: darken
    by scaling towards black, lighten by mixing towards white (luma is linear
    in RGB, so both are exact)."""
    current = _luma(rgb)
    if current >= target:
        return rgb * (target / max(current, 1e-6))
    return 1.0 - (1.0 - rgb) * ((1.0 - target) / max(1.0 - current, 1e-6))


# Unit polygons of the fixed shapes, as (cos, sin) lists; computed once.
_CIRCLE_VERTICES = 48  # at 4x supersampling the facets are < 0.1 px deep
_UNIT_CIRCLE = [(math.cos(2 * math.pi * k / _CIRCLE_VERTICES), math.sin(2 * math.pi * k / _CIRCLE_VERTICES))
                for k in range(_CIRCLE_VERTICES)]
_UNIT_SQUARE = [(math.cos(math.pi / 4 + k * math.pi / 2), math.sin(math.pi / 4 + k * math.pi / 2)) for k in range(4)]
_UNIT_STAR = [(math.cos(-math.pi / 2 + k * math.pi / 5), math.sin(-math.pi / 2 + k * math.pi / 5)) for k in range(10)]

_Points = list[tuple[float, float]]


def _shape_vertices(draws: _Draws, shape: str) -> _Points:
    """Unit-circumradius polygon of a shape, centred at 0, unrotated.

    Plain Python: the polygons have 3-48 vertices, where NumPy's per-call
    overhead costs more than the arithmetic."""
    if shape == "circle":
        # A slight ellipse keeps circles from being pixel-identical discs
        # while staying unmistakably round.
        squash = draws.u(0.88, 1.0)
        return [(c, s * squash) for c, s in _UNIT_CIRCLE]
    if shape == "square":
        return list(_UNIT_SQUARE)
    if shape == "triangle":
        # Mildly irregular, but every angle stays near 60 degrees.
        pts = []
        for k in range(3):
            t = -math.pi / 2 + k * (2 * math.pi / 3) + draws.u(-0.1, 0.1)
            r = draws.u(0.92, 1.0)
            pts.append((r * math.cos(t), r * math.sin(t)))
        return pts
    if shape == "star":
        # Inner radius 0.36-0.46: notches deep enough to read as a star at 32 px.
        inner = draws.u(0.36, 0.46)
        return [(c, s) if k % 2 == 0 else (c * inner, s * inner) for k, (c, s) in enumerate(_UNIT_STAR)]
    if shape == "cross":
        w = draws.u(0.20, 0.30)  # arm half-width, arm length 1
        n = 1.0 / math.hypot(1.0, w)
        a, b = w * n, n
        return [(a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a),
                (-a, -a), (-a, -b), (a, -b), (a, -a), (b, -a), (b, a)]
    raise ValueError(shape)  # pragma: no cover - guarded by the class list


def _place(points: _Points, angle: float, scale: float, cx: float, cy: float) -> _Points:
    """Rotate, scale and move a unit polygon into pixel coordinates."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def _inset(points: _Points, width: float) -> _Points:
    """The polygon shrunk by ``width`` (miter offset of every edge inwards).

    Exact for convex polygons and for the star and cross as long as the
    width is small against their arms, which the outline widths are."""
    n = len(points)
    # Orientation decides which side of an edge is "inside".
    area2 = sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n))
    sign = 1.0 if area2 > 0 else -1.0
    normals = []
    for i in range(n):
        (x0, y0), (x1, y1) = points[i], points[(i + 1) % n]
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        # Left normal of the edge; inward for counter-clockwise (area2 > 0).
        normals.append((-(y1 - y0) / length * sign, (x1 - x0) / length * sign))
    out = []
    for i in range(n):
        (ax, ay), (bx, by) = normals[i - 1], normals[i]
        # Miter: the point at distance width from both adjacent edges.
        k = width / max(1.0 + ax * bx + ay * by, 1e-3)
        out.append((points[i][0] + (ax + bx) * k, points[i][1] + (ay + by) * k))
    return out


def _mask(points: _Points, size: int, ss: int) -> np.ndarray:
    """Anti-aliased coverage (float32 in [0, 1]) of a polygon given in pixel
    coordinates of the final image, drawn at ``ss`` times the size.

    Only the polygon's bounding box (within the image) is drawn and reduced:
    the shape covers well under the whole image, and downscaling is the
    costly step."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, y0 = max(int(math.floor(min(xs))), 0), max(int(math.floor(min(ys))), 0)
    x1, y1 = min(int(math.ceil(max(xs))), size), min(int(math.ceil(max(ys))), size)
    mask = np.zeros((size, size), dtype=np.float32)
    if x1 <= x0 or y1 <= y0:
        return mask
    w, h = x1 - x0, y1 - y0
    canvas = Image.new("L", (w * ss, h * ss), 0)
    ImageDraw.Draw(canvas).polygon([((x - x0) * ss, (y - y0) * ss) for x, y in points], fill=255)
    if ss > 1:
        canvas = canvas.reduce(ss)  # box filter: exact area coverage
    # frombuffer(tobytes()) is ~3x faster than asarray(image) for small images.
    box = np.frombuffer(canvas.tobytes(), dtype=np.uint8).reshape(h, w)
    np.multiply(box, np.float32(1.0 / 255.0), out=mask[y0:y1, x0:x1])
    return mask


_BACKGROUNDS = ("solid", "linear", "radial", "noise", "stripes")
# Cumulative probabilities of the background kinds above.
_BACKGROUND_CDF = (0.15, 0.45, 0.60, 0.90, 1.0)


def _background(draws: _Draws, rng: np.random.Generator, size: int, colours: list[np.ndarray]) -> np.ndarray:
    """A 3 x size x size float32 background mixing two colours.

    Images are built channel-first: broadcasting a colour over (3, H, W) runs
    contiguous inner loops, several times faster than (H, W, 3). Scalars are
    Python floats throughout because NumPy float64 scalars would silently
    promote the float32 arrays to float64.
    """
    x, y = _grid(size)
    c0, c1 = (c[:, None, None] for c in colours)
    kind = _BACKGROUNDS[bisect.bisect(_BACKGROUND_CDF, draws.u())]
    if kind == "solid":
        return np.repeat(np.repeat(c0, size, axis=1), size, axis=2)
    if kind == "linear":  # in a random direction, spanning the image
        a = draws.u(0, 2 * np.pi)
        ca, sa = math.cos(a), math.sin(a)
        k = 1.0 / (abs(ca) + abs(sa))
        t = x * (ca * k) + y * (sa * k) + (0.5 - 0.5 * (ca + sa) * k)
    elif kind == "radial":  # around a random point
        cx, cy, k = draws.u(0.1, 0.9), draws.u(0.1, 0.9), draws.u(0.9, 1.5)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) * k
    elif kind == "noise":  # smooth value noise, two octaves
        coarse, fine = 2 + draws.pick(3), 5 + draws.pick(4)
        cells = min(size, _COARSE_NOISE)
        grids = rng.random(((coarse + 3) ** 2 + (fine + 3) ** 2,), dtype=np.float32)
        g1 = grids[: (coarse + 3) ** 2].reshape(coarse + 3, coarse + 3)
        g2 = grids[(coarse + 3) ** 2 :].reshape(fine + 3, fine + 3)
        w1, w2 = _spline_matrix(cells, coarse), _spline_matrix(cells, fine)
        # Both octaves in one product with an inner dimension <= 18.
        left = np.concatenate([ordered_matmul(w1, g1), ordered_matmul(w2, g2) * np.float32(0.4)], axis=1)
        t = _upsample(ordered_matmul(left, np.concatenate([w1, w2], axis=1).T), size)
        lo, hi = float(t.min()), float(t.max())
        t = (t - lo) * (1.0 / max(hi - lo, 1e-6))
    else:
        # Faint stripes: a quarter of the colour difference is enough texture;
        # full-contrast stripes would compete with the shape's edges.
        c1 = c0 + 0.25 * (c1 - c0)
        a, freq, phase = draws.u(0, np.pi), draws.u(3.0, 8.0), draws.u(0, 2 * np.pi)
        k = 2 * np.pi * freq
        t = np.sin(x * (math.cos(a) * k) + y * (math.sin(a) * k) + phase) * 0.5 + 0.5
    t = np.clip(t, 0.0, 1.0)
    # Convex mix: every pixel's luma stays between the two colours' lumas.
    return c0 + t * (c1 - c0)


def _colours(draws: _Draws) -> tuple[np.ndarray, list[np.ndarray], bool]:
    """Shape colour, two background colours, and whether the background is
    lighter than the shape. Every background colour's luma is at least
    _MIN_LUMA_GAP away from the shape's, on one side of it, so the shape
    stands out in colour and in grayscale alike."""
    shape = _hsv_to_rgb(draws.u(), draws.u(0.55, 1.0), draws.u(0.6, 1.0))
    ls = _luma(shape)
    dark = (0.03, ls - _MIN_LUMA_GAP)
    light = (ls + _MIN_LUMA_GAP, 0.97)
    # The shape's value is >= 0.6, so its luma is >= 0.068 and at least one
    # side always has room (blue shapes get light backgrounds, yellow dark).
    sides = [r for r in (dark, light) if r[1] > r[0] + 0.02]
    lo, hi = sides[draws.pick(len(sides))]
    t0 = draws.u(lo, hi)
    if draws.chance(0.5):
        t1 = draws.u(lo, hi)
    else:  # a subtler second colour
        t1 = min(max(t0 + draws.u(-0.12, 0.12), lo), hi)
    hue = draws.u()
    colours = []
    for target in (t0, t1):
        # Mostly near one hue (harmonious), sometimes any hue; mostly muted
        # (saturation skewed low) so the saturated shape stands out.
        h = (hue + draws.u(-0.2, 0.2)) % 1.0 if draws.chance(0.6) else draws.u()
        base = _hsv_to_rgb(h, draws.u(0.0, 0.7) ** 1.5, 1.0)
        colours.append(_with_luma(base, target))
    return shape, colours, lo > ls


def render_shape(seed: int, index: int, shape: str, size: int) -> np.ndarray:
    """Render image ``index`` of class ``shape``: size x size x 3 uint8.

    Depends only on its arguments; all randomness comes from
    ``default_rng([seed, stream, index])``.
    """
    rng = np.random.default_rng([seed, _IMAGE_STREAM, index])
    draws = _Draws(rng)
    ss = _supersample(size)
    shape_rgb, bg_colours, bg_light = _colours(draws)
    img = _background(draws, rng, size, bg_colours)

    radius = 0.5 * draws.u(*_SIZE_RANGE) * size
    # Centre so the circumscribed circle is at most 10% outside the image.
    margin = 0.9 * radius
    cx, cy = draws.u(margin, size - margin), draws.u(margin, size - margin)
    verts = _place(_shape_vertices(draws, shape), draws.u(0, 2 * np.pi), radius, cx, cy)
    coverage = _mask(verts, size, ss)

    if draws.chance(0.35):
        # Soft drop shadow: the coverage mask, shifted and blurred, darkens
        # the background beside the shape.
        strength = draws.u(0.25, 0.5)
        if bg_light:
            # Keep the shadowed background lighter than the shape by a margin.
            min_bg = min(_luma(c) for c in bg_colours)
            strength = min(strength, 1.0 - (_luma(shape_rgb) + 0.15) / max(min_bg, 1e-6))
        angle, distance, blur = draws.u(0, 2 * np.pi), draws.u(0.03, 0.07) * size, draws.u(0.02, 0.05) * size
        if strength > 0.05:
            cells = min(size, _COARSE_SHADOW)
            k = cells / size
            coarse = coverage if cells == size else _mask([(x * k, y * k) for x, y in verts], cells, 2)
            my = _blur_matrix(cells, math.sin(angle) * distance * k, blur * k)
            mx = _blur_matrix(cells, math.cos(angle) * distance * k, blur * k)
            shadow = _upsample(ordered_matmul(ordered_matmul(my, coarse), mx.T), size)
            img *= 1.0 - np.minimum(shadow, 1.0) * strength

    colour = shape_rgb[:, None, None]
    fill: np.ndarray = colour
    if draws.chance(0.6):
        # Gentle linear shading across the shape, as if lit from one side.
        x, y = _grid(size)
        a, amount = draws.u(0, 2 * np.pi), draws.u(0.05, 0.15)
        ca, sa = math.cos(a) * amount * size / radius, math.sin(a) * amount * size / radius
        fill = colour * (x * ca + y * sa + (1.0 - (cx * ca + cy * sa) / size))

    if draws.chance(0.25):
        # Outline on the far side of the background, so it adds contrast.
        width = draws.u(0.04, 0.09) * radius + 0.5
        outline = colour * 0.35 if bg_light else 1.0 - (1.0 - colour) * 0.3
        inner = _mask(_inset(verts, width), size, ss)
        img = img * (1.0 - coverage) + outline * (coverage - inner) + fill * inner
    else:
        img = img * (1.0 - coverage) + fill * coverage

    # Fine grain over everything (uniform: cheaper than Gaussian and
    # indistinguishable at this amplitude), then round to 8 bits.
    grain = draws.u(0.004, 0.02) * math.sqrt(12.0) * 255.0
    noise = rng.random((size, size), dtype=np.float32)
    noise *= grain
    img *= 255.0
    img += noise  # one plane for all channels: luminance grain, like film
    img += 0.5 - 0.5 * grain
    np.clip(img, 0.0, 255.0, out=img)
    # Interleave into H x W x 3 one plane at a time: three strided writes are
    # much faster than one transposing copy.
    out = np.empty((size, size, 3), dtype=np.uint8)
    for k in range(3):
        out[..., k] = img[k]
    return out


# ---------------------------------------------------------------------------
# The source


@dataclass(frozen=True)
class SynthShapesSource:
    """``synth:shapes``: ``count`` procedurally drawn shape images.

    Class ids follow ``classes`` (always in the canonical order circle,
    square, triangle, star, cross). With ``imbalance`` R > 1 the first class
    is the most frequent and counts decay geometrically to the last, which
    has 1/R as many.
    """

    uri: str
    count: int = DEFAULT_COUNT
    size: int = 64
    seed: int = 0
    imbalance: float = DEFAULT_IMBALANCE
    classes: tuple[str, ...] = SHAPE_CLASSES

    def __post_init__(self) -> None:
        # open_shapes validates user input with friendlier messages; this
        # guards direct construction (tests, library users).
        if not self.classes or any(c not in SHAPE_CLASSES for c in self.classes) or \
                list(self.classes) != [c for c in SHAPE_CLASSES if c in self.classes]:
            raise _fail(self.uri, f"classes {self.classes!r} must be a non-empty subset of {SHAPE_CLASSES} in that order")
        if not len(self.classes) <= self.count <= MAX_COUNT:
            raise _fail(self.uri, f"parameter count={self.count} must be {len(self.classes)}..{MAX_COUNT}")
        if not 4 <= self.size <= 4096:
            raise _fail(self.uri, f"parameter size={self.size} is out of range (4..4096)")
        if self.seed < 0:
            raise _fail(self.uri, f"parameter seed={self.seed} must be >= 0")
        if not (math.isfinite(self.imbalance) and self.imbalance >= 1.0):
            raise _fail(self.uri, f"parameter imbalance={self.imbalance!r} must be a finite number >= 1")

    def license(self) -> str:
        """Procedural images: made here, dedicated to the public domain."""
        return SYNTH_LICENSE

    @property
    def counts(self) -> list[int]:
        """Images per class, in label order."""
        return list(_cached_counts(self.count, len(self.classes), self.imbalance))

    def label_ids(self) -> np.ndarray:
        """Class id of every index (read-only int16 array of length count)."""
        return _label_ids(self.seed, tuple(self.counts))

    def partitions(self) -> list[Partition]:
        """Consecutive index ranges of PARTITION_SIZE images."""
        return [
            Partition(index=k, items=(start, min(start + PARTITION_SIZE, self.count)),
                      description=f"synth:shapes images {start}..{min(start + PARTITION_SIZE, self.count) - 1}",
                      num_inputs=min(start + PARTITION_SIZE, self.count) - start)
            for k, start in enumerate(range(0, self.count, PARTITION_SIZE))
        ]

    def render(self, index: int) -> np.ndarray:
        """The pixels of image ``index`` (size x size x 3 uint8)."""
        if not 0 <= index < self.count:
            raise IndexError(f"image index {index} out of range 0..{self.count - 1}")
        label = self.classes[int(self.label_ids()[index])]
        return render_shape(self.seed, index, label, self.size)

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        """Render the images of one partition as decoded RGB samples."""
        start, stop = partition.items
        ids = self.label_ids()
        for i in range(int(start), int(stop)):
            label = self.classes[int(ids[i])]
            yield Sample(
                key=f"shapes/{i:07d}",
                locator=f"{self.uri}#{i}",
                label=label,
                array=render_shape(self.seed, i, label, self.size),
                provenance={"origin": str(i), "license": SYNTH_LICENSE},
            )

    def class_names(self) -> list[str]:
        """The class names in label-id order."""
        return list(self.classes)

    def fingerprint(self) -> str:
        """Every parameter plus the generator version."""
        return (
            f"synth:shapes/v{GENERATOR_VERSION}?count={self.count}&size={self.size}&seed={self.seed}"
            f"&imbalance={self.imbalance!r}&classes={','.join(self.classes)}"
        )


def open_shapes(uri: str, spec: SourceSpec, ctx: SourceContext) -> SynthShapesSource:
    """Factory for ``synth:`` URIs (only ``synth:shapes`` exists).

    Parameters come from ``spec.params`` and the URI query (the query wins):
    ``count`` (default 5000), ``size`` (default: the build's size), ``seed``
    (default: the build's seed), ``imbalance`` (default 1.0) and ``classes``
    (comma-separated subset). Keys of ``spec.params`` that are not synth
    parameters are left to the pipeline (they may be generic source options);
    unknown keys in the URI query are an error. Raises SourceError naming the
    URI and parameter at fault.
    """
    _, query = _split_uri(uri)
    merged: dict[str, Any] = {k.lower(): v for k, v in dict(spec.params or {}).items() if k.lower() in PARAMS}
    merged.update(query)

    count = _parse_int(uri, "count", merged.get("count", DEFAULT_COUNT), 1, MAX_COUNT)
    size = _parse_int(uri, "size", merged.get("size", ctx.size_px), 4, 4096)
    seed = _parse_int(uri, "seed", merged.get("seed", ctx.seed), 0, 2**63 - 1)
    imbalance = _parse_imbalance(uri, merged.get("imbalance", DEFAULT_IMBALANCE))
    classes = _parse_classes(uri, merged["classes"]) if "classes" in merged else SHAPE_CLASSES
    if count < len(classes):
        raise _fail(uri, f"parameter count={count} is smaller than the number of classes ({len(classes)}); every class needs an image")
    return SynthShapesSource(uri=uri, count=count, size=size, seed=seed, imbalance=imbalance, classes=classes)

