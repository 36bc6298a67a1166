"""samples.parquet: one row per output sample, mapping it to its shard and row and
back to its source, with its provenance columns.

Written in row groups of at most ``CHUNK_ROWS`` samples: the provenance of
a sample is a small JSON object, and holding it parsed for every sample of a
10M-sample build would take gigabytes. The provenance columns (one per key
any sample has) and their types are therefore decided over all samples
first, from parsed chunks that are dropped again; a build of one chunk
parses once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gandata.plan.table import Plan, StagedTable
from gandata.sources.base import Source
from gandata.util.arrow import (
    bool_column,
    numpy_column,
    python_column,
    string_column,
)
from gandata.util.json_rows import parse_json_rows

# Samples per row group (and per parsed batch of provenance).
CHUNK_ROWS = 65_536


def write_samples_index(path: Path, staged: StagedTable, plan: Plan, sources: Sequence[Source]) -> None:
    """samples.parquet: one row per output sample, mapping it to its shard
    and row and back to its source."""
    n = len(plan.rows)
    shard_of = np.zeros(n, np.int32)
    row_of = np.zeros(n, np.int32)
    for shard in plan.shards:
        shard_of[shard.entries] = shard.index
        row_of[shard.entries] = np.arange(len(shard.entries), dtype=np.int32)
    # Rows sorted by (shard, row), the order a reader iterates in.
    order = np.lexsort((row_of, shard_of))
    chunks = [order[start : start + CHUNK_ROWS] for start in range(0, n, CHUNK_ROWS)] or [order]
    # One chunk: its parsed provenance is used as is. Several: a first pass
    # fixes the columns' types, so every row group has the same schema.
    kinds = None if len(chunks) == 1 else _provenance_kinds(staged, plan, chunks)
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks:
            table = pa.table(_columns(staged, plan, sources, chunk, shard_of, row_of, kinds))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _provenance(staged: StagedTable, plan: Plan, chunk: np.ndarray) -> list[dict[str, Any]]:
    """The parsed provenance of the output samples ``chunk`` (indices into
    plan.rows), each with its ``synthetic`` flag."""
    if not len(chunk):
        return []
    texts = staged.table.column("provenance").take(numpy_column(plan.rows[chunk])).to_pylist()
    parsed = parse_json_rows(texts)
    # Every row says whether it is synthetic (a generator's sample), so
    # readers need not know which sources generate.
    for p in parsed:
        p["synthetic"] = bool(p.get("synthetic", False))
    return parsed


def _provenance_kinds(staged: StagedTable, plan: Plan, chunks: Sequence[np.ndarray]) -> dict[str, set[type]]:
    """Provenance key -> the Python types of its values over all samples
    (None values left out)."""
    kinds: dict[str, set[type]] = {}
    for chunk in chunks:
        for p in _provenance(staged, plan, chunk):
            for key, value in p.items():
                found = kinds.setdefault(key, set())
                if type(value) is int and not -(1 << 63) <= value < (1 << 63):
                    found.add(object)  # no int64 holds it
                elif value is not None:
                    found.add(type(value))
    return kinds


def _columns(
    staged: StagedTable, plan: Plan, sources: Sequence[Source], chunk: np.ndarray, shard_of: np.ndarray,
    row_of: np.ndarray, kinds: dict[str, set[type]] | None,
) -> dict[str, Any]:
    n = len(chunk)
    staged_rows = plan.rows[chunk]
    take = numpy_column(staged_rows)
    table = staged.table
    keys = table.column("key").take(take) if n else string_column([])
    if plan.derived_from is not None:
        # An oversampled copy gets its own key: the original's, plus ~copyN.
        copy_no = plan.copy_numbers[chunk]
        keys = string_column([k if c == 0 else f"{k}~copy{c}" for k, c in zip(keys.to_pylist(), copy_no.tolist())])
    classes = plan.classes
    labels = plan.labels[chunk]
    source_idx = staged.column("source_index")[staged_rows] if n else np.zeros(0, np.int32)
    derived: list[str | None] = [None] * n
    if plan.derived_from is not None and n:
        origin = plan.derived_from[chunk]
        has = origin >= 0
        originals = table.column("key").take(numpy_column(origin[has])).to_pylist() if has.any() else []
        it = iter(originals)
        derived = [next(it) if h else None for h in has.tolist()]
    columns: dict[str, Any] = {
        "shard": numpy_column(shard_of[chunk]),
        "row": numpy_column(row_of[chunk]),
        "key": keys,
        "label": numpy_column(labels.astype(np.int64)),
        "class_name": string_column([classes[i] if i >= 0 else None for i in labels]),
        "source": string_column([sources[i].uri for i in source_idx]),
        "locator": table.column("locator").take(take) if n else string_column([]),
        "split": string_column(plan.splits[chunk].tolist()),
        "derived_from": string_column(derived),
        "augmentation": string_column([plan.augmentation[i] for i in chunk] if plan.augmentation is not None else [None] * n),
        "content_hash": string_column([h.hex() for h in table.column("content_hash").take(take).to_pylist()] if n else []),
        "original_width": table.column("original_width").take(take) if n else numpy_column(np.zeros(0, np.int32)),
        "original_height": table.column("original_height").take(take) if n else numpy_column(np.zeros(0, np.int32)),
    }
    if plan.weights is not None:
        columns["weight"] = numpy_column(plan.weights[chunk].astype(np.float32))
    provenance = _provenance(staged, plan, chunk)
    if not n and kinds is None:
        columns["synthetic"] = bool_column([])
    names = sorted(kinds) if kinds is not None else sorted({k for p in provenance for k in p})
    for name in names:
        column = name if name not in columns else f"provenance_{name}"
        values = [p.get(name) for p in provenance]
        columns[column] = _typed(values, kinds[name] if kinds is not None else None)
    return columns


def _typed(values: list[Any], kinds: set[type] | None) -> pa.Array:
    """A provenance column: typed from its own values (one chunk), or from
    the ``kinds`` its values take over all chunks, so every row group agrees."""
    typed = python_column(values, kinds)
    if typed is not None:
        return typed
    if kinds is None:
        try:  # nested values: pyarrow infers lists and structs
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    # Values no one type holds (or, over several row groups, nested ones): as text.
    return string_column([None if v is None else str(v) for v in values])
