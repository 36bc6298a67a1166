"""Realistic synthetic images for the cleaning tests (and calibration):
smooth photo-like scenes, handwritten-digit-like strokes, and the planted
problems (re-encoded/rescaled near duplicates, blank, tiny, blurred)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def photo(rng: np.random.Generator, size: int = 96) -> Image.Image:
    """A smooth photo-like scene: a gradient sky, low-frequency colour noise,
    a few soft blobs and fine grain."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    top, bottom = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    img = top[None, None] * (1 - y[..., None]) + bottom[None, None] * y[..., None]
    low = rng.normal(0, 1, (6, 6, 3)).astype(np.float32)
    low_img = np.stack([np.asarray(Image.fromarray(low[..., c], mode="F").resize((size, size), Image.Resampling.BICUBIC)) for c in range(3)], -1)
    img += 25 * low_img
    for _ in range(rng.integers(2, 6)):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        colour = rng.uniform(0, 255, 3)
        w = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None] * rng.uniform(0.4, 0.9)
        img = img * (1 - w) + colour * w
    img += rng.normal(0, 3, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def digit(rng: np.random.Generator, which: int = 1, size: int = 28) -> Image.Image:
    """A handwritten-digit-like image: white strokes on black, random slant,
    thickness and wobble (28 px, like MNIST)."""
    scale = 4
    canvas = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(canvas)
    width = int(rng.uniform(1.5, 3.5) * scale)
    slant = rng.uniform(-0.35, 0.35)
    cx = size * scale / 2 + rng.uniform(-3, 3) * scale
    top, bottom = rng.uniform(3, 7) * scale, (size - rng.uniform(3, 7)) * scale

    def pt(t: float, dx: float = 0.0) -> tuple[float, float]:
        yy = top + (bottom - top) * t
        return (cx + dx * scale + slant * (yy - size * scale / 2) + rng.normal(0, 0.3) * scale, yy)

    if which == 1:
        pts = [pt(t) for t in np.linspace(0, 1, 6)]
        if rng.random() < 0.5:
            pts.insert(0, pt(0.15, -rng.uniform(2, 5)))
        draw.line(pts, fill=255, width=width, joint="curve")
    else:
        ts = np.linspace(0, 2 * np.pi * rng.uniform(0.8, 1.0), 24)
        rx, ry = rng.uniform(4, 7), rng.uniform(7, 10)
        pts = [(cx + scale * rx * np.sin(t) + slant * scale * ry * np.cos(t), size * scale / 2 - scale * ry * np.cos(t)) for t in ts]
        draw.line(pts, fill=255, width=width, joint="curve")
    return canvas.resize((size, size), Image.Resampling.BOX).convert("RGB")


def jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def near_copy(image: Image.Image, rng: np.random.Generator) -> bytes:
    """Resized by a few percent and re-encoded at another JPEG quality."""
    f = rng.uniform(0.92, 1.08)
    w, h = image.size
    resized = image.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BICUBIC)
    return jpeg(resized, int(rng.integers(55, 80)))


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
