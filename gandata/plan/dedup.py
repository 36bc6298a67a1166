"""Exact deduplication: one sample per group of identical decoded pixels.

Columnar: the content hashes are grouped by sorting (``StagedTable.content_groups``)
and the keeper of each group is found with array operations; Python strings
are made only for the duplicates, which get a rejection each.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gandata.plan.split import min_per_group
from gandata.plan.table import StagedTable
from gandata.records import Rejection
from gandata.util.arrow import numpy_column, to_numpy


def source_key_order(staged: StagedTable, rows: np.ndarray) -> np.ndarray:
    """``rows`` (ascending staged rows) sorted by (source, key), ties in
    staged order. Arrow compares strings as UTF-8 bytes, which is Python's
    code-point order."""
    take = numpy_column(rows)
    table = pa.table({"source": numpy_column(staged.column("source_index")[rows].astype(np.int64)),
                      "key": staged.table.column("key").take(take)})
    return rows[to_numpy(pc.sort_indices(table, sort_keys=[("source", "ascending"), ("key", "ascending")])).astype(np.int64)]


def find_exact_duplicates(staged: StagedTable) -> tuple[np.ndarray, list[Rejection]]:
    """Keep the first sample by (source, key) of each group of identical
    pixels; return the kept mask and one rejection per other member (in
    (source, key) order)."""
    n = staged.num_rows
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep, []
    groups = staged.content_groups()
    # Only rows of groups with two or more members are ordered: sorting the
    # keys of every row (10M strings) took seconds for a few duplicates.
    shared = np.flatnonzero(np.bincount(groups)[groups] > 1)
    if not len(shared):
        return keep, []
    order = source_key_order(staged, shared)
    # The first row of each group in (source, key) order is its keeper: the
    # smallest position in that order per group.
    positions = np.arange(len(order), dtype=np.int64)
    keeper = order[np.minimum(min_per_group(groups[order], positions, int(groups.max()) + 1, len(order)), len(order) - 1)]
    dups = order[keeper[groups[order]] != order]
    keep[dups] = False
    kept = keeper[groups[dups]]
    keys = staged.strings("key", dups)
    kept_keys = staged.strings("key", kept)
    locators = staged.strings("locator", dups)
    sources = staged.column("source_index")[dups].tolist()
    return keep, [
        Rejection(key=k, locator=loc, reason="duplicate", detail=f"{k}: same pixels as {kk}",
                  source=staged.source_uris[int(s)], kept_key=kk)
        for k, kk, loc, s in zip(keys, kept_keys, locators, sources)
    ]
