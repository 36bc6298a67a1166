"""Tiny labelled folders for the class-balance tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gandata.config import (
    BalanceConfig,
    BuildConfig,
    ImageConfig,
    OutputConfig,
    SourceSpec,
)


def make_folder(root: Path, counts: dict[str, int], copies: dict[str, int] | None = None, size: int = 16, seed: int = 0) -> Path:
    """One distinct random PNG per count in ``root/<class>/``; ``copies``
    adds that many exact copies of the first ``n`` images of a class (each
    image i < n gets one extra file ``i-dup.png``)."""
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:04d}.png", compress_level=0)
            if copies and i < copies.get(name, 0):
                Image.fromarray(pixels).save(root / name / f"{i:04d}-dup.png", compress_level=0)
    return root


def folder_config(
    src: Path, out: Path, balance: BalanceConfig | None = None, output_config: OutputConfig | None = None, **kw
) -> BuildConfig:
    """A serial build of the folder ``src`` into ``out`` at 16 px (shards of 64
    unless ``output_config`` says otherwise)."""
    return BuildConfig(
        sources=(SourceSpec(str(src)),), output=str(out), image=ImageConfig(size_px=16),
        out=output_config or OutputConfig(shard_size=64), workers=1, executor="serial",
        balance=balance or BalanceConfig(), **kw,
    )
