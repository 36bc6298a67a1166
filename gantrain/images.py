"""From generator output to pixels and picture files."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gantrain.errors import ConfigError

# Picture formats a grid can be written in, by file suffix (PIL format names).
GRID_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# Grids are enlarged (nearest neighbour, so pixels stay pixels) until a cell is
# at least this wide: a 32 px sample is a smudge on a modern screen.
MIN_CELL_PX = 96


def to_uint8(x: torch.Tensor, offset: Sequence[float], scale: Sequence[float]) -> torch.Tensor:
    """Normalized images [N, C, H, W] -> uint8 pixels, inverting the dataset's
    normalization (pixel = normalized * scale + offset)."""
    x = x.detach().float()
    scale_t = torch.tensor(scale, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    offset_t = torch.tensor(offset, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    pixels = x * scale_t + offset_t
    return (pixels.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def make_grid(images: np.ndarray, ncols: int, padding: int = 2) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 [H', W', C] picture, ``ncols`` per row."""
    n, c, h, w = images.shape
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    grid = np.zeros((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = images[i].transpose(1, 2, 0)
    return grid


def grid_format(path: str | Path) -> str:
    """The PIL format a grid at ``path`` is written in, from its suffix;
    raises ``ConfigError`` (one line) for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in GRID_FORMATS:
        shown = suffix or "no suffix"
        raise ConfigError(
            f"-o/--output: {path}: {shown} is not a picture format gantrain writes "
            f"(use {', '.join(GRID_FORMATS)} for a grid, or .npz for raw arrays)"
        )
    return GRID_FORMATS[suffix]


def render_grid(
    images: np.ndarray, ncols: int, row_labels: Sequence[str] | None = None, min_cell_px: int = 1
) -> Image.Image:
    """uint8 [N, C, H, W] images as one picture, ``ncols`` per row, enlarged
    so a cell is at least ``min_cell_px`` wide, with ``row_labels`` (one per
    row, e.g. class names) written in a margin on the left."""
    h = images.shape[2]
    scale = max(1, math.ceil(min_cell_px / h))
    grid = make_grid(images, ncols)
    picture = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).convert("RGB")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    if not row_labels:
        return picture
    font_px = max(12, min(24, (h * scale) // 4))
    font = ImageFont.load_default(size=font_px)
    probe = ImageDraw.Draw(picture)
    margin = 2 * font_px // 3 + max(int(probe.textlength(str(label), font=font)) for label in row_labels)
    labelled = Image.new("RGB", (picture.width + margin, picture.height), (255, 255, 255))
    labelled.paste(picture, (margin, 0))
    draw = ImageDraw.Draw(labelled)
    row_px = (h + 2) * scale  # make_grid pads each cell by 2 px
    for row, label in enumerate(row_labels):
        centre = 2 * scale + row * row_px + h * scale // 2
        draw.text((font_px // 3, centre), str(label), fill=(0, 0, 0), font=font, anchor="lm")
    return labelled


def save_grid(
    images: np.ndarray, path: str | Path, ncols: int, row_labels: Sequence[str] | None = None,
    min_cell_px: int = 1,
) -> Path:
    """Write uint8 [N, C, H, W] images as a grid picture (atomically), in the
    format its suffix names (.png, .jpg/.jpeg, .webp); see ``render_grid``."""
    path = Path(path)
    fmt = grid_format(path)
    picture = render_grid(images, ncols, row_labels, min_cell_px)
    if fmt == "PNG" and images.shape[1] == 1 and not row_labels and min_cell_px <= 1:
        picture = picture.convert("L")  # training grids of grey data stay one channel
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    picture.save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    os.replace(tmp, path)
    return path


def save_npz(path: str | Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write raw samples: ``images`` uint8 [N, C, H, W] and ``labels`` int64 [N]."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    np.savez(tmp, images=images, labels=labels.astype(np.int64))
    os.replace(tmp, path)
    return path
