"""The global plan step: decides which staged samples go where.

This is the one place that sees the whole dataset, and it only ever touches
small per-sample metadata (never pixels): exact-duplicate removal, label ids,
the seeded shuffle, shard assignment and the dataset statistics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from gandata.ingest.staging import read_meta
from gandata.records import Rejection
from gandata.util.arrow import numpy_column, string_column, to_numpy

UNLABELED = -1


@dataclass
class StagedTable:
    """All staged samples, in (source, partition, row) order."""

    table: pa.Table  # meta columns + part, row, source_index
    part_dirs: list[str]
    source_uris: list[str]

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> np.ndarray:
        return to_numpy(self.table.column(name))

    def keys(self) -> list[str]:
        return self.table.column("key").to_pylist()


@dataclass
class ShardPlan:
    index: int
    split: str
    entries: np.ndarray  # indices into Plan.entries arrays


@dataclass
class Plan:
    """The outcome of the plan step: what the write pass produces."""

    classes: list[str]
    # One element per output sample, in output order.
    rows: np.ndarray  # index into the staged table
    labels: np.ndarray  # int64 label id, -1 when unlabeled
    splits: np.ndarray  # split name per entry (object array)
    shards: list[ShardPlan]
    rejections: list[Rejection]
    mean: list[float]
    std: list[float]
    # Filled by later stages (class balancing): per-entry extras.
    weights: np.ndarray | None = None
    derived_from: np.ndarray | None = None  # staged row of the original, -1 for originals
    augmentation: list[str | None] | None = None
    # Oversampled copies: the copy number per entry (0 for originals), the
    # seed of each copy's augmentation, and the augmentation spec (None:
    # exact copies). Set by the balance step.
    copy_numbers: np.ndarray | None = None
    augment_seeds: np.ndarray | None = None
    augment_spec: str | None = None
    # Set by the cleaning step: near-duplicate cluster per staged row (the
    # split keeps a cluster on one side), and the manifest's ``clean`` record.
    cluster_ids: np.ndarray | None = None
    clean_summary: dict[str, Any] | None = None


def load_staged(part_dirs: Sequence[str], source_indices: Sequence[int], source_uris: Sequence[str]) -> StagedTable:
    """Concatenate the metadata of every staged partition."""
    tables = []
    for part, (part_dir, src) in enumerate(zip(part_dirs, source_indices)):
        meta = read_meta(Path(part_dir))
        n = meta.num_rows
        meta = meta.append_column("part", numpy_column(np.full(n, part, np.int32)))
        meta = meta.append_column("row", numpy_column(np.arange(n, dtype=np.int32)))
        meta = meta.append_column("source_index", numpy_column(np.full(n, src, np.int32)))
        tables.append(meta)
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
    else:
        table = pa.table({"key": string_column([])})
    return StagedTable(table=table, part_dirs=list(part_dirs), source_uris=list(source_uris))


def resolve_classes(found: Sequence[str | None], declared: Sequence[Sequence[str] | None]) -> list[str]:
    """Class names in label-id order: names a source declares keep its order
    (so hf/CIFAR label ids survive); other names found are sorted after them."""
    ordered: list[str] = []
    seen: set[str] = set()
    for names in declared:
        for name in names or ():
            if name not in seen:
                ordered.append(name)
                seen.add(name)
    rest = sorted({n for n in found if n is not None and n not in seen})
    return ordered + rest


def synthetic_mask(staged: StagedTable) -> np.ndarray:
    """True for staged samples a source flagged ``synthetic`` in their
    provenance (samples of a generator, e.g. ``gan:``)."""
    if staged.num_rows == 0 or "provenance" not in staged.table.column_names:
        return np.zeros(staged.num_rows, dtype=bool)
    import pyarrow.compute as pc

    column = staged.table.column("provenance")
    # A vectorized substring test first, so datasets without synthetic
    # samples never parse their provenance JSON row by row.
    found = pc.match_substring(column, '"synthetic"')
    candidates = np.flatnonzero(to_numpy(found, null_as=False))
    out = np.zeros(staged.num_rows, dtype=bool)
    for i in candidates.tolist():
        out[i] = bool(json.loads(column[i].as_py()).get("synthetic"))
    return out


def label_ids(staged: StagedTable, classes: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index.get(name, UNLABELED) if name is not None else UNLABELED for name in staged.table.column("label").to_pylist()], dtype=np.int64)


def channel_stats(staged: StagedTable, rows: np.ndarray, size_px: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the final dataset on the [0, 1] scale,
    from the per-sample sums computed at ingest (no pixel pass)."""
    if len(rows) == 0:
        return [], []
    sums = np.array(staged.table.column("channel_sum").to_pylist(), dtype=np.float64)[rows]
    sumsq = np.array(staged.table.column("channel_sumsq").to_pylist(), dtype=np.float64)[rows]
    count = len(rows) * size_px * size_px
    mean = sums.sum(axis=0) / count
    var = np.maximum(sumsq.sum(axis=0) / count - mean**2, 0.0)
    return [float(m) for m in mean], [float(math.sqrt(v)) for v in var]


def assign_shards(splits: np.ndarray, shard_size: int) -> list[ShardPlan]:
    """Cut each split's entries (already in output order) into shards."""
    shards: list[ShardPlan] = []
    for split in _split_order(splits):
        idx = np.flatnonzero(splits == split)
        for start in range(0, len(idx), shard_size):
            shards.append(ShardPlan(index=len(shards), split=split, entries=idx[start : start + shard_size]))
    return shards


def _split_order(splits: np.ndarray) -> list[str]:
    names = set(splits.tolist())
    ordered = [s for s in ("train", "val", "test") if s in names]
    return ordered + sorted(names - set(ordered))


