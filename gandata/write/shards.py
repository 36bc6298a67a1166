"""The write pass: one planned shard -> one safetensors file.

Runs in worker processes. Pixels are gathered from the memory-mapped staging
area, cast to the output dtype (normalized when stored as float) and written
under a temporary name, then renamed: a shard file that exists is complete.
The images are gathered, converted and written a block of about
``BLOCK_BYTES`` at a time, so a worker's memory does not grow with the shard
(a 4,096-image float32 shard at 256 px is 3.2 GB) and no shard-sized array
is ever allocated: on the 2-core VM a fresh 37 MB array cost 40-90 ms of
page faults (huge pages the kernel had to free first).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from gandata.dataset.normalize import Normalization
from gandata.ingest.staging import open_images
from gandata.util.hashing import file_sha256
from gandata.write.safetensors_file import Tensor, TensorBlocks, write_safetensors

# Bytes of images gathered, converted and written at a time: small enough to
# stay in the CPU cache (and below numpy's 4 MiB huge-page threshold).
BLOCK_BYTES = 2 << 20


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


def gather_pixels(part_dirs: tuple[str, ...], parts: np.ndarray, rows: np.ndarray, channels_first: bool = False,
                  opened: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Collect [N, H, W, C] pixels ([N, C, H, W] with ``channels_first``),
    reading each partition file once (``opened``: memory maps kept from
    earlier calls, by partition)."""
    if len(parts) == 0:
        raise ValueError("a shard needs at least one sample")
    out: np.ndarray | None = None
    for part in np.unique(parts):
        if opened is None:
            images = open_images(Path(part_dirs[int(part)]))
        elif (images := opened.get(int(part))) is None:
            images = opened[int(part)] = open_images(Path(part_dirs[int(part)]))
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
    if len(task.rows) == 0:
        raise ValueError("a shard needs at least one sample")
    h, w, c = open_images(Path(task.part_dirs[int(task.parts[0])])).shape[1:]
    dtype = np.dtype(task.dtype)
    images = TensorBlocks(dtype, (len(task.rows), c, h, w), _image_blocks(task, _block_rows(c * h * w, dtype)))
    tensors: dict[str, Tensor] = {"images": images, "labels": np.ascontiguousarray(task.labels, dtype=np.int64)}
    if task.weights is not None:
        tensors["weights"] = np.ascontiguousarray(task.weights, dtype=np.float32)
    # One metadata key only: safetensors serializes metadata from a hash map,
    # so several keys come out in varying order and shards would differ by run.
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    sha256 = write_safetensors(tmp, tensors, {"format": "gandata"})
    os.replace(tmp, path)
    return ShardResult(task.index, task.path, len(task.rows), sha256, reused=False)


def _block_rows(values_per_image: int, dtype: np.dtype) -> int:
    """Images per block: BLOCK_BYTES of output, or of float32 while a
    normalized block is computed."""
    itemsize = 1 if dtype == np.uint8 else max(4, dtype.itemsize)
    return max(1, BLOCK_BYTES // (values_per_image * itemsize))


def _image_blocks(task: ShardTask, rows_per_block: int) -> Iterator[np.ndarray]:
    """The shard's images tensor, [n, C, H, W] in the output dtype, a block
    of ``rows_per_block`` images at a time."""
    opened: dict[int, np.ndarray] = {}
    augment = task.augmentations is not None and any(spec is not None for spec in task.augmentations)
    for start in range(0, len(task.rows), rows_per_block):
        end = min(start + rows_per_block, len(task.rows))
        parts, rows = task.parts[start:end], task.rows[start:end]
        if augment:
            assert task.augmentations is not None and task.augment_seeds is not None
            # albumentations is imported only by builds that augment copies.
            from gandata.image.augment import augment_copy

            pixels = gather_pixels(task.part_dirs, parts, rows, opened=opened)
            for i, spec in enumerate(task.augmentations[start:end]):
                if spec is not None:
                    pixels[i] = augment_copy(pixels[i], spec, int(task.augment_seeds[start + i]))
            chw = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
        else:
            chw = gather_pixels(task.part_dirs, parts, rows, channels_first=True, opened=opened)
        yield chw if task.dtype == "uint8" else task.normalization.apply(chw).astype(task.dtype)
