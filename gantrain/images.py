"""From generator output to pixels and picture files."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image


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


def save_grid(images: np.ndarray, path: str | Path, ncols: int) -> Path:
    """Write uint8 [N, C, H, W] images as a PNG grid (atomically)."""
    path = Path(path)
    grid = make_grid(images, ncols)
    picture = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    picture.save(tmp)
    os.replace(tmp, path)
    return path


def save_npz(path: str | Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write raw samples: ``images`` uint8 [N, C, H, W] and ``labels`` int64 [N]."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    np.savez(tmp, images=images, labels=labels.astype(np.int64))
    os.replace(tmp, path)
    return path
