"""Pictures of a dataset: sample grids (``gandata preview``) and the
``gandata stats --plot`` figure, drawn with Pillow.

Pillow rather than matplotlib: it is already a dependency, the figures are
simple (bars, image grids, text), and the output is byte-stable across
machines, which a plotting library's font rendering is not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gandata.errors import ConfigError

CELL_MIN_PX = 48
LABEL_W = 120
PAD = 4


def _cell(img: np.ndarray, size: int) -> Image.Image:
    pic = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).convert("RGB")
    return pic.resize((size, size), Image.NEAREST) if pic.width != size else pic


def grid_image(samples: Mapping[str, Sequence[np.ndarray]], per_class: int) -> Image.Image:
    """One row per class: the class name, then up to ``per_class`` images
    (uint8 HWC), upscaled (nearest) to at least CELL_MIN_PX."""
    shapes = [img.shape[0] for imgs in samples.values() for img in imgs]
    side = max(shapes, default=CELL_MIN_PX)
    cell = side * max(1, -(-CELL_MIN_PX // side))
    rows = max(1, len(samples))
    width = LABEL_W + per_class * (cell + PAD) + PAD
    height = rows * (cell + PAD) + PAD
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for r, (name, imgs) in enumerate(samples.items()):
        y = PAD + r * (cell + PAD)
        draw.text((PAD, y + cell // 2 - 6), str(name)[:18], fill=(0, 0, 0), font=font)
        for c, img in enumerate(list(imgs)[:per_class]):
            canvas.paste(_cell(img, cell), (LABEL_W + PAD + c * (cell + PAD), y))
    return canvas


def bar_chart(series: Mapping[str, Mapping[str, int]], width: int = 640) -> Image.Image:
    """Horizontal bars of class counts; several series (``before``, ``after``)
    are drawn side by side per class in different colours."""
    colours = [(70, 110, 200), (230, 140, 40), (80, 170, 90)]
    names = list(next(iter(series.values()), {}).keys())
    top = max((v for s in series.values() for v in s.values()), default=1) or 1
    bar_h = 12
    row_h = bar_h * len(series) + 8
    height = 24 + max(1, len(names)) * row_h
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    x = LABEL_W
    for k, label in enumerate(series):
        draw.rectangle((x, 6, x + 10, 16), fill=colours[k % len(colours)])
        draw.text((x + 14, 5), label, fill=(0, 0, 0), font=font)
        x += 20 + 8 * len(label)
    span = width - LABEL_W - 70
    for r, name in enumerate(names):
        y = 24 + r * row_h
        draw.text((PAD, y + 2), str(name)[:18], fill=(0, 0, 0), font=font)
        for k, (label, counts) in enumerate(series.items()):
            value = int(counts.get(name, 0))
            yy = y + k * bar_h
            draw.rectangle((LABEL_W, yy, LABEL_W + max(1, round(span * value / top)), yy + bar_h - 2), fill=colours[k % len(colours)])
            draw.text((LABEL_W + round(span * value / top) + 4, yy), str(value), fill=(0, 0, 0), font=font)
    return canvas


def stack_vertically(parts: Sequence[Image.Image]) -> Image.Image:
    width = max(p.width for p in parts)
    canvas = Image.new("RGB", (width, sum(p.height for p in parts)), (255, 255, 255))
    y = 0
    for p in parts:
        canvas.paste(p, (0, y))
        y += p.height
    return canvas


def save_png(image: Image.Image, path: str | os.PathLike[str], option: str) -> None:
    try:
        image.save(Path(path), format="PNG")
    except OSError as exc:
        raise ConfigError(f"{option}: cannot write {path}: {exc.strerror or exc}") from None


def preview_samples(root: str | os.PathLike[str], per_class: int, split: str | None = None, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Up to ``per_class`` uint8 HWC images per class of a built dataset
    (seeded choice; float datasets denormalized), class order of the manifest.
    An unlabeled dataset gives one row named ``(unlabeled)``."""
    from gandata.dataset.reader import open_dataset

    if per_class < 1:
        raise ConfigError(f"--per-class: {per_class} must be at least 1")
    ds = open_dataset(root, split=split)
    labels = np.concatenate([ds.load_shard(i)["labels"] for i in range(len(ds.shards))]) if ds.shards else np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    names = ds.classes or ["(unlabeled)"]
    out: dict[str, list[np.ndarray]] = {}
    for cid, name in enumerate(names):
        idx = np.flatnonzero(labels == (cid if ds.classes else -1))
        pick = np.sort(rng.permutation(idx)[:per_class]) if len(idx) else idx
        out[name] = [np.ascontiguousarray(ds.to_uint8(ds[int(i)][0]).transpose(1, 2, 0)) for i in pick]
    return out
