"""The staging area: ingested images at the target size, plus their metadata.

Each ingest partition becomes one directory ``part-SSS-PPPPPP`` holding

- ``images.npy``: uint8 ``[n, H, W, C]``, read back memory-mapped so the plan
  and write passes never hold more than one shard's pixels;
- ``meta.parquet``: one row per staged image (key, locator, label, original
  size, exact-content hash, per-channel pixel sums, provenance as JSON,
  quality scores ``score_<name>``, a 64-bit ``phash`` and a ``thumb``, and
  ``split`` where the source assigned one);
- ``rejected.jsonl``: the inputs of this partition that were refused.

A partition directory is written under a temporary name and renamed when
complete, so its presence means it is whole: a re-run reuses it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gandata.records import Rejection
from gandata.util.arrow import (
    binary_column,
    fixed_binary_column,
    float64_list_column,
    numeric_column,
    read_parquet,
    string_column,
)

# Part of every ingest key: raised when staged partitions gain or change
# columns, so a build never mixes partitions staged by older code with new
# ones (2: score_detail, score_jpeg_quality and split; 3: score_std from
# exact channel moments, where a float32 std could differ in its low bits;
# 4: folder, archive and object-store sources cut their last partitions
# smaller, so a partition index names other items than before; 5: luma,
# pHash and detail scores summed in a fixed order instead of by BLAS, whose
# kernels differ by CPU, util/ordered_product).
STAGING_VERSION = 5
IMAGES_FILE = "images.npy"
META_FILE = "meta.parquet"
REJECTED_FILE = "rejected.jsonl"


def partition_dir_name(source_index: int, partition_index: int) -> str:
    return f"part-{source_index:03d}-{partition_index:06d}"


@dataclass
class StagedRow:
    """Metadata of one staged image (one row of meta.parquet)."""

    key: str
    locator: str
    label: str | None
    original_width: int
    original_height: int
    upscale: float
    content_hash: bytes
    provenance: dict[str, Any]
    # Per-channel sums of pixel/255 and of its square (normalization
    # statistics), filled in for a whole partition at once.
    channel_sum: list[float] | None = None
    channel_sumsq: list[float] | None = None
    # Scores computed at ingest by cleaning checks; name -> value (None: not measured).
    scores: dict[str, float | None] | None = None
    # 64-bit perceptual hash (gandata.clean.phash) as int64, and a small
    # grayscale thumbnail (gandata.clean.scores.thumbnail) for near duplicates.
    phash: int | None = None
    thumb: bytes | None = None
    # The split the source assigned (None: the plan decides); a column only
    # in partitions where some row has one, so other staging is unchanged.
    split: str | None = None


def write_partition(part_dir: Path, images: np.ndarray, rows: list[StagedRow], rejections: Iterable[Rejection]) -> None:
    """Write one partition atomically (temporary directory, then rename)."""
    tmp = part_dir.with_name(f".tmp-{part_dir.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    np.save(tmp / IMAGES_FILE, images, allow_pickle=False)
    score_names = sorted({name for r in rows for name in (r.scores or {})})
    # Built from buffers (gandata.util.arrow): pa.array would import pandas in every worker.
    columns: dict[str, pa.Array] = {
        "key": string_column([r.key for r in rows]),
        "locator": string_column([r.locator for r in rows]),
        "label": string_column([r.label for r in rows]),
        "original_width": numeric_column([r.original_width for r in rows], "int32"),
        "original_height": numeric_column([r.original_height for r in rows], "int32"),
        "upscale": numeric_column([r.upscale for r in rows], "float32"),
        "content_hash": fixed_binary_column([r.content_hash for r in rows], 16),
        "channel_sum": float64_list_column([r.channel_sum or [] for r in rows]),
        "channel_sumsq": float64_list_column([r.channel_sumsq or [] for r in rows]),
        "provenance": string_column([json.dumps(r.provenance, sort_keys=True, default=str) for r in rows]),
    }
    for name in score_names:
        columns[f"score_{name}"] = numeric_column([(r.scores or {}).get(name) for r in rows], "float32")
    if any(r.phash is not None for r in rows):
        columns["phash"] = numeric_column([r.phash for r in rows], "int64")
        columns["thumb"] = binary_column([r.thumb for r in rows])
    if any(r.split is not None for r in rows):
        columns["split"] = string_column([r.split for r in rows])
    pq.write_table(pa.Table.from_arrays(list(columns.values()), names=list(columns)), tmp / META_FILE)
    with open(tmp / REJECTED_FILE, "w", encoding="utf-8") as fh:
        for rej in rejections:
            fh.write(json.dumps(rej.to_json(), sort_keys=True) + "\n")
    if part_dir.exists():  # a concurrent or earlier complete copy: keep it
        shutil.rmtree(tmp)
        return
    os.rename(tmp, part_dir)


def is_complete(part_dir: Path) -> bool:
    return (part_dir / META_FILE).is_file() and (part_dir / IMAGES_FILE).is_file()


def read_meta(part_dir: Path, columns: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> pa.Table:
    """A partition's metadata: all columns, the named ``columns``, or all
    but ``exclude`` (columns not read at all, so never held in memory)."""
    path = part_dir / META_FILE
    if not exclude or columns is not None:
        return read_parquet(path, columns=columns)
    with pq.ParquetFile(path) as parquet:  # one open for the schema and the data
        wanted = [name for name in parquet.schema_arrow.names if name not in exclude]
        return parquet.read(columns=wanted, use_threads=False)


def read_rejections(part_dir: Path) -> list[dict[str, Any]]:
    path = part_dir / REJECTED_FILE
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def open_images(part_dir: Path) -> np.ndarray:
    """The partition's images, memory-mapped (no pixels are read until used)."""
    return np.load(part_dir / IMAGES_FILE, mmap_mode="r", allow_pickle=False)
