"""samples.parquet: one row per output sample, mapping it to its shard and row and
back to its source, with its provenance columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gandata.plan.table import Plan, StagedTable
from gandata.sources.base import Source
from gandata.util.arrow import bool_column, numpy_column, python_column, string_column


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
    staged_rows = plan.rows[order]
    take = numpy_column(staged_rows)
    table = staged.table
    keys = table.column("key").take(take) if n else string_column([])
    if plan.derived_from is not None:
        # An oversampled copy gets its own key: the original's, plus ~copyN.
        copy_no = plan.copy_numbers[order]
        keys = string_column([k if c == 0 else f"{k}~copy{c}" for k, c in zip(keys.to_pylist(), copy_no.tolist())])
    classes = plan.classes
    labels = plan.labels[order]
    source_idx = staged.column("source_index")[staged_rows] if n else np.zeros(0, np.int32)
    derived = None
    if plan.derived_from is not None:
        all_keys = table.column("key").to_pylist()
        derived = [all_keys[d] if d >= 0 else None for d in plan.derived_from[order]]
    columns: dict[str, Any] = {
        "shard": numpy_column(shard_of[order]),
        "row": numpy_column(row_of[order]),
        "key": keys,
        "label": numpy_column(labels.astype(np.int64)),
        "class_name": string_column([classes[i] if i >= 0 else None for i in labels]),
        "source": string_column([sources[i].uri for i in source_idx]),
        "locator": table.column("locator").take(take) if n else string_column([]),
        "split": string_column(plan.splits[order].tolist()),
        "derived_from": string_column(derived if derived is not None else [None] * n),
        "augmentation": string_column([plan.augmentation[i] for i in order] if plan.augmentation is not None else [None] * n),
        "content_hash": string_column([h.hex() for h in table.column("content_hash").take(take).to_pylist()] if n else []),
        "original_width": table.column("original_width").take(take) if n else numpy_column(np.zeros(0, np.int32)),
        "original_height": table.column("original_height").take(take) if n else numpy_column(np.zeros(0, np.int32)),
    }
    if plan.weights is not None:
        columns["weight"] = numpy_column(plan.weights[order].astype(np.float32))
    provenance = [json.loads(p) for p in table.column("provenance").take(take).to_pylist()] if n else []
    # Every row says whether it is synthetic (a generator's sample), so
    # readers need not know which sources generate.
    for p in provenance:
        p["synthetic"] = bool(p.get("synthetic", False))
    if not n:
        columns["synthetic"] = bool_column([])
    for name in sorted({k for p in provenance for k in p}):
        column = name if name not in columns else f"provenance_{name}"
        values = [p.get(name) for p in provenance]
        typed = python_column(values)
        if typed is not None:
            columns[column] = typed
            continue
        try:  # nested values: pyarrow infers lists and structs
            columns[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[column] = string_column([None if v is None else str(v) for v in values])
    pq.write_table(pa.table(columns), path)
