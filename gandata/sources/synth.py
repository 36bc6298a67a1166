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
is at least ~40% of the image across and lies (almost) fully inside it.

Determinism: image ``i`` depends only on the seed, ``i``, its class and the
image size, never on how the work is partitioned; which index gets which class
is a seeded shuffle of the class counts, so classes are interleaved.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator
from urllib.parse import parse_qsl

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.base import Partition, SourceContext

__all__ = [
    "GENERATOR_VERSION",
    "KINDS",
    "SHAPE_CLASSES",
    "PARTITION_SIZE",
    "SynthShapesSource",
    "class_counts",
    "open_synth",
]

# Bump whenever the drawing code changes what any image looks like: it is part
# of the fingerprint, so staged partitions from an older generator are redone.
GENERATOR_VERSION = 1

KINDS = ("shapes",)
SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross")
PARTITION_SIZE = 512

# Defaults of the parameters that do not come from the build context.
DEFAULT_COUNT = 5000
DEFAULT_IMBALANCE = 1.0
MAX_COUNT = 100_000_000
PARAMS = ("count", "size", "seed", "imbalance", "classes")

# Stream tags mixed into the seed so the per-image generators and the label
# shuffle never share a random stream (SeedSequence pads with zeros, so the
# tags must sit before the index, not after it).
_IMAGE_STREAM = 1
_LABEL_STREAM = 2

# Rec. 601 luma weights: the pipeline's grayscale conversion uses the same.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Minimum luma gap between the shape's colour and every background colour.
_MIN_LUMA_GAP = 0.30
# Shape extent (diameter of the circumscribed circle) as a fraction of the side.
_SIZE_RANGE = (0.40, 0.85)


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


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1] (x, y), shape (size, size)."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(axis, axis)


def _supersample(size: int) -> int:
    # 4x gives smooth edges at GAN sizes; big images need less and would
    # otherwise cost a lot of memory per mask.
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
    return float(rgb @ _LUMA)


def _with_luma(rgb: np.ndarray, target: float) -> np.ndarray:
    """The colour moved to exactly the target luma, keeping its hue: darken
    by scaling towards black, lighten by mixing towards white (luma is linear
    in RGB, so both are exact)."""
    current = _luma(rgb)
    target = float(target)
    if current >= target:
        return rgb * (target / max(current, 1e-6))
    return 1.0 - (1.0 - rgb) * ((1.0 - target) / max(1.0 - current, 1e-6))


def _shape_vertices(rng: np.random.Generator, shape: str) -> np.ndarray:
    """Unit-circumradius polygon (N x 2) of a shape, rotated, centred at 0."""
    if shape == "circle":
        # A slight, rotated ellipse keeps circles from being pixel-identical
        # discs while staying unmistakably round.
        t = np.linspace(0.0, 2 * np.pi, 72, endpoint=False)
        pts = np.stack([np.cos(t), rng.uniform(0.88, 1.0) * np.sin(t)], axis=1)
    elif shape == "square":
        t = np.pi / 4 + np.arange(4) * (np.pi / 2)
        pts = np.stack([np.cos(t), np.sin(t)], axis=1)
    elif shape == "triangle":
        # Mildly irregular, but every angle stays near 60 degrees.
        t = -np.pi / 2 + np.arange(3) * (2 * np.pi / 3) + rng.uniform(-0.10, 0.10, 3)
        r = rng.uniform(0.92, 1.0, 3)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    elif shape == "star":
        inner = rng.uniform(0.38, 0.50)
        t = -np.pi / 2 + np.arange(10) * (np.pi / 5)
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    elif shape == "cross":
        w = rng.uniform(0.20, 0.30)  # arm half-width, arm length 1
        pts = np.array(
            [(w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
             (-w, -w), (-w, -1), (w, -1), (w, -w), (1, -w), (1, w)],
            dtype=np.float64,
        ) / math.hypot(1.0, w)
    else:  # pragma: no cover - guarded by the class list
        raise ValueError(shape)
    angle = rng.uniform(0.0, 2 * np.pi)
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def _mask(points: np.ndarray, size: int, ss: int, inset: float = 0.0) -> np.ndarray:
    """Anti-aliased coverage (float32 in [0, 1]) of a polygon given in pixel
    coordinates of the final image; ``inset`` > 0 draws an inward border of
    that width (in final pixels) as uncovered, for outlines."""
    canvas = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(canvas)
    xy = [tuple(p) for p in (points * ss).tolist()]
    if inset > 0:
        # Pillow draws a wide polygon outline inside the polygon, so an
        # outline of "ink" 0 leaves exactly the interior minus the border.
        draw.polygon(xy, fill=255, outline=0, width=max(1, int(round(inset * ss))))
    else:
        draw.polygon(xy, fill=255)
    if ss > 1:
        canvas = canvas.reduce(ss)  # box filter: exact area coverage
    return np.asarray(canvas, dtype=np.float32) * (1.0 / 255.0)


_BACKGROUNDS = ("solid", "linear", "radial", "noise", "stripes")
# Cumulative probabilities of the background kinds above.
_BACKGROUND_CDF = (0.15, 0.45, 0.60, 0.90, 1.0)


def _background(rng: np.random.Generator, size: int, colours: list[np.ndarray]) -> np.ndarray:
    """A 3 x size x size float32 background mixing two colours.

    Images are built channel-first: broadcasting a colour over (3, H, W) runs
    contiguous inner loops, several times faster than (H, W, 3). Scalars are
    made Python floats throughout because NumPy float64 scalars would silently
    promote the float32 arrays to float64.
    """
    x, y = _grid(size)
    c0, c1 = (c[:, None, None] for c in colours)
    kind = _BACKGROUNDS[bisect.bisect(_BACKGROUND_CDF, rng.random())]
    if kind == "solid":
        return np.repeat(np.repeat(c0, size, axis=1), size, axis=2)
    if kind == "linear":  # in a random direction, spanning the image
        a = float(rng.uniform(0, 2 * np.pi))
        ca, sa = math.cos(a), math.sin(a)
        t = ((x - 0.5) * ca + (y - 0.5) * sa) * (1.0 / (abs(ca) + abs(sa))) + 0.5
    elif kind == "radial":  # around a random point
        cx, cy = (float(v) for v in rng.uniform(0.1, 0.9, 2))
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) * float(rng.uniform(0.9, 1.5))
    elif kind == "noise":  # low-frequency value noise, two octaves
        t = _value_noise(rng, size, int(rng.integers(2, 5)))
        t = t + 0.4 * _value_noise(rng, size, int(rng.integers(5, 9)))
        t = (t - t.min()) * (1.0 / max(float(t.max() - t.min()), 1e-6))
    else:
        # Faint stripes: a quarter of the colour difference is enough texture;
        # full-contrast stripes would compete with the shape's edges.
        c1 = c0 + 0.25 * (c1 - c0)
        a = float(rng.uniform(0, np.pi))
        freq = float(rng.uniform(3.0, 8.0))
        phase = float(rng.uniform(0, 2 * np.pi))
        t = 0.5 + 0.5 * np.sin((x * math.cos(a) + y * math.sin(a)) * (2 * np.pi * freq) + phase)
    t = np.clip(t, 0.0, 1.0)
    # Convex mix: every pixel's luma stays between the two colours' lumas.
    return c0 + t * (c1 - c0)


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise: a (cells+1)^2 random grid upsampled bicubically."""
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    img = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray], bool]:
    """Shape colour, two background colours, and whether the background is
    lighter than the shape. Every background colour's luma is at least
    _MIN_LUMA_GAP away from the shape's, on one side of it, so the shape
    stands out in colour and in grayscale alike."""
    shape = _hsv_to_rgb(rng.random(), float(rng.uniform(0.55, 1.0)), float(rng.uniform(0.6, 1.0)))
    ls = _luma(shape)
    dark = (0.03, ls - _MIN_LUMA_GAP)
    light = (ls + _MIN_LUMA_GAP, 0.97)
    # The shape's value is >= 0.6, so its luma is >= 0.068 and at least one
    # side always has room (blue shapes get light backgrounds, yellow dark).
    sides = [r for r in (dark, light) if r[1] > r[0] + 0.02]
    lo, hi = sides[int(rng.integers(len(sides)))]
    hue = rng.random()
    t0 = float(rng.uniform(lo, hi))
    if rng.random() < 0.5:
        t1 = float(rng.uniform(lo, hi))
    else:  # a subtler second colour
        t1 = min(max(t0 + float(rng.uniform(-0.12, 0.12)), lo), hi)
    colours = []
    for target in (t0, t1):
        # Mostly near one hue (harmonious), sometimes any hue; mostly muted
        # (saturation skewed low) so the saturated shape stands out.
        h = (hue + float(rng.normal(0, 0.15))) % 1.0 if rng.random() < 0.6 else rng.random()
        base = _hsv_to_rgb(h, float(rng.uniform(0.0, 0.7)) ** 1.5, 1.0)
        colours.append(_with_luma(base, target))
    return shape, colours, lo > ls


def render_shape(seed: int, index: int, shape: str, size: int) -> np.ndarray:
    """Render image ``index`` of class ``shape``: size x size x 3 uint8.

    Depends only on its arguments; all randomness comes from
    ``default_rng([seed, stream, index])``.
    """
    rng = np.random.default_rng([seed, _IMAGE_STREAM, index])
    ss = _supersample(size)
    shape_rgb, bg_colours, bg_light = _colours(rng)
    img = _background(rng, size, bg_colours)

    radius = 0.5 * float(rng.uniform(*_SIZE_RANGE)) * size
    # Centre so the circumscribed circle is at most 10% outside the image.
    margin = 0.9 * radius
    cx, cy = (float(v) for v in rng.uniform(margin, size - margin, 2))
    verts = _shape_vertices(rng, shape) * radius + np.array([cx, cy])

    # Soft drop shadow: darkens the background below and beside the shape.
    if rng.random() < 0.35:
        strength = float(rng.uniform(0.25, 0.5))
        if bg_light:
            # Keep the shadowed background lighter than the shape by a margin.
            min_bg = min(_luma(c) for c in bg_colours)
            strength = min(strength, 1.0 - (_luma(shape_rgb) + 0.15) / max(min_bg, 1e-6))
        angle = float(rng.uniform(0, 2 * np.pi))
        distance = float(rng.uniform(0.03, 0.07)) * size
        blur = float(rng.uniform(0.02, 0.05)) * size
        if strength > 0.05:
            offset = np.array([math.cos(angle), math.sin(angle)]) * distance
            shadow = Image.new("L", (size, size), 0)
            ImageDraw.Draw(shadow).polygon([tuple(p) for p in (verts + offset).tolist()], fill=255)
            shadow = shadow.filter(ImageFilter.GaussianBlur(radius=blur))
            img *= 1.0 - np.asarray(shadow, dtype=np.float32) * (strength / 255.0)

    colour = shape_rgb[:, None, None]
    fill: np.ndarray = colour
    if rng.random() < 0.6:
        # Gentle linear shading across the shape, as if lit from one side.
        x, y = _grid(size)
        a = float(rng.uniform(0, 2 * np.pi))
        amount = float(rng.uniform(0.05, 0.15))
        ca, sa = math.cos(a) * amount / radius, math.sin(a) * amount / radius
        fill = colour * (1.0 + (x * size - cx) * ca + (y * size - cy) * sa)

    coverage = _mask(verts, size, ss)
    if rng.random() < 0.25:
        # Outline on the far side of the background, so it adds contrast.
        width = float(rng.uniform(0.04, 0.09)) * radius + 0.5
        outline = colour * 0.35 if bg_light else 1.0 - (1.0 - colour) * 0.3
        inner = _mask(verts, size, ss, inset=width)
        img = img * (1.0 - coverage) + outline * (coverage - inner) + fill * inner
    else:
        img = img * (1.0 - coverage) + fill * coverage

    # Fine grain over everything, like sensor noise (uniform: cheaper than
    # Gaussian and indistinguishable at this amplitude).
    grain = float(rng.uniform(0.004, 0.02)) * math.sqrt(12.0)
    img += (rng.random(img.shape, dtype=np.float32) - 0.5) * grain
    img *= 255.0
    img += 0.5
    np.clip(img, 0.0, 255.0, out=img)
    # Interleave into H x W x 3 one channel at a time: a strided write per
    # plane is much faster than a transposing copy.
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

    @property
    def counts(self) -> list[int]:
        """Images per class, in label order."""
        return class_counts(self.count, len(self.classes), self.imbalance)

    def label_ids(self) -> np.ndarray:
        """Class id of every index (read-only int16 array of length count)."""
        return _label_ids(self.seed, tuple(self.counts))

    def partitions(self) -> list[Partition]:
        """Consecutive index ranges of PARTITION_SIZE images."""
        return [
            Partition(index=k, items=(start, min(start + PARTITION_SIZE, self.count)),
                      description=f"synth:shapes images {start}..{min(start + PARTITION_SIZE, self.count) - 1}")
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
                provenance={"origin": str(i), "license": "CC0-1.0"},
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


def open_synth(uri: str, spec: SourceSpec, ctx: SourceContext) -> SynthShapesSource:
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

