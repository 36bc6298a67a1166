"""The global plan step: decides which staged samples go where.

This is the one place that sees the whole dataset, and it only ever touches
small per-sample metadata (never pixels): exact-duplicate removal, label ids,
the seeded shuffle, shard assignment and the dataset statistics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from gandata.arrow_columns import numpy_column, string_column, to_numpy
from gandata.clean.checks import apply_cleaning
from gandata.config import BuildConfig
from gandata.merge import merge_sources, source_weights
from gandata.records import Rejection
from gandata.staging import read_meta

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
    extra: dict[str, Any] = field(default_factory=dict)


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


def find_exact_duplicates(staged: StagedTable) -> tuple[np.ndarray, list[Rejection]]:
    """Keep the first sample by (source, key) of each group of identical
    pixels; return the kept mask and one rejection per other member."""
    n = staged.num_rows
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep, []
    keys = staged.keys()
    sources = staged.column("source_index")
    hashes = staged.table.column("content_hash").to_pylist()
    locators = staged.table.column("locator").to_pylist()
    order = sorted(range(n), key=lambda i: (int(sources[i]), keys[i]))
    first: dict[bytes, int] = {}
    rejections = []
    for i in order:
        h = hashes[i]
        kept = first.setdefault(h, i)
        if kept != i:
            keep[i] = False
            rejections.append(
                Rejection(
                    key=keys[i],
                    locator=locators[i],
                    reason="duplicate",
                    detail=f"{keys[i]}: same pixels as {keys[kept]}",
                    source=staged.source_uris[int(sources[i])],
                    kept_key=keys[kept],
                )
            )
    return keep, rejections


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


def make_plan(staged: StagedTable, config: BuildConfig, declared_classes: Sequence[Sequence[str] | None]) -> Plan:
    """Run the global step: dedup, labels, shuffle, shards and statistics."""
    rejections: list[Rejection] = []
    keep = np.ones(staged.num_rows, dtype=bool)
    if config.dedup:
        keep, dup_rejections = find_exact_duplicates(staged)
        rejections.extend(dup_rejections)
    # Per-source label maps, fixed labels and caps (gandata/merge.py).
    declared_classes, cap_rejections = merge_sources(staged, config.sources, keep, declared_classes, config.seed)
    rejections.extend(cap_rejections)
    # Cleaning after the merge: label conflicts need the unified labels.
    synthetic = synthetic_mask(staged)
    cleaned = apply_cleaning(staged, keep, rejections, config.clean, config.image.size_px, keep_exact=not config.dedup,
                             synthetic=synthetic if synthetic.any() else None)
    keep, rejections = cleaned.keep, cleaned.rejections
    found = staged.table.column("label").to_pylist() if staged.num_rows else []
    classes = resolve_classes(found, declared_classes)
    all_labels = label_ids(staged, classes) if staged.num_rows else np.zeros(0, np.int64)
    kept_rows = np.flatnonzero(keep)
    # The seeded shuffle makes shards class-mixed and independent of worker
    # count: it depends only on the staged order, which is deterministic.
    rng = np.random.default_rng(config.seed)
    rows = kept_rows[rng.permutation(len(kept_rows))] if len(kept_rows) else kept_rows
    labels = all_labels[rows]
    splits = np.full(len(rows), "train", dtype=object)
    mean, std = channel_stats(staged, rows, config.image.size_px)
    plan = Plan(
        classes=classes,
        rows=rows.astype(np.int64),
        labels=labels,
        splits=splits,
        shards=assign_shards(splits, config.out.shard_size),
        rejections=rejections,
        mean=mean,
        std=std,
        extra={"clean": cleaned.summary} if cleaned.summary else {},
    )
    if cleaned.cluster_ids is not None:
        # Class balancing keeps near-duplicate clusters on one side of the
        # validation split and undersamples one member per cluster first.
        plan.extra["cluster_ids"] = cleaned.cluster_ids
    from gandata.balance import apply_balance  # imports plan helpers; late to avoid a cycle

    plan = apply_balance(plan, staged, config)
    # Source weights follow each output entry (copies included) and multiply
    # the class-balancing weights when both are asked for.
    weights = source_weights(staged.column("source_index")[plan.rows], config.sources) if len(plan.rows) else None
    if weights is not None:
        plan.weights = weights if plan.weights is None else plan.weights * weights
    return plan
