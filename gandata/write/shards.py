"""The write pass: one planned shard -> one safetensors file.

Runs in worker processes. Pixels are gathered from the memory-mapped staging
area, cast to the output dtype (normalized when stored as float) and written
under a temporary name, then renamed: a shard file that exists is complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gandata.dataset.normalize import Normalization
from gandata.ingest.staging import open_images
from gandata.util.hashing import file_sha256
from gandata.write.safetensors_file import write_safetensors


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to write one shard."""

    index: int
    path: str
    part_dirs: tuple[str, ...]
    parts: np.ndarray  # int32 index into part_dirs, per sample
    rows: np.ndarray  # int32 row within that partition, per sample
    labels: np.ndarray  # int64
    dtype: str
    normalization: Normalization
    weights: np.ndarray | None = None
    # Per-sample augmentation specs for oversampled copies (None = original).
    augmentations: tuple[str | None, ...] | None = None
    augment_seeds: np.ndarray | None = None


@dataclass(frozen=True)
class ShardResult:
    index: int
    path: str
    num_samples: int
    sha256: str
    reused: bool


def gather_pixels(part_dirs: tuple[str, ...], parts: np.ndarray, rows: np.ndarray, channels_first: bool = False) -> np.ndarray:
    """Collect [N, H, W, C] pixels ([N, C, H, W] with ``channels_first``),
    reading each partition file once."""
    if len(parts) == 0:
        raise ValueError("a shard needs at least one sample")
    out: np.ndarray | None = None
    for part in np.unique(parts):
        images = open_images(Path(part_dirs[int(part)]))
        where = np.flatnonzero(parts == part)
        if out is None:
            h, w, c = images.shape[1:]
            out = np.empty((len(parts),) + ((c, h, w) if channels_first else (h, w, c)), dtype=np.uint8)
        picked = rows[where]
        if _is_run(where) and _is_run(picked):
            # Unshuffled output takes whole runs of a partition: one copy
            # straight from the memory map (the transpose included).
            block = images[picked[0] : picked[-1] + 1]
            out[where[0] : where[-1] + 1] = block.transpose(0, 3, 1, 2) if channels_first else block
        else:
            block = images[picked]
            out[where] = block.transpose(0, 3, 1, 2) if channels_first else block
    assert out is not None
    return out


def _is_run(index: np.ndarray) -> bool:
    """Whether ``index`` is i, i+1, ..., i+k."""
    return bool(np.all(np.diff(index) == 1))


def write_shard(task: ShardTask) -> ShardResult:
    """Write one shard, or reuse it when a previous run completed it."""
    path = Path(task.path)
    if path.exists():
        return ShardResult(task.index, task.path, len(task.rows), file_sha256(path), reused=True)
    if task.augmentations is not None and any(spec is not None for spec in task.augmentations):
        assert task.augment_seeds is not None
        # albumentations is imported only by builds that augment copies.
        from gandata.image.augment import augment_copy

        pixels = gather_pixels(task.part_dirs, task.parts, task.rows)
        for i, spec in enumerate(task.augmentations):
            if spec is not None:
                pixels[i] = augment_copy(pixels[i], spec, int(task.augment_seeds[i]))
        chw = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
    else:
        chw = gather_pixels(task.part_dirs, task.parts, task.rows, channels_first=True)
    if task.dtype == "uint8":
        images = chw
    else:
        images = task.normalization.apply(chw).astype(task.dtype)
    tensors = {"images": images, "labels": np.ascontiguousarray(task.labels, dtype=np.int64)}
    if task.weights is not None:
        tensors["weights"] = np.ascontiguousarray(task.weights, dtype=np.float32)
    # One metadata key only: safetensors serializes metadata from a hash map,
    # so several keys come out in varying order and shards would differ by run.
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    sha256 = write_safetensors(tmp, tensors, {"format": "gandata"})
    os.replace(tmp, path)
    return ShardResult(task.index, task.path, len(task.rows), sha256, reused=False)
