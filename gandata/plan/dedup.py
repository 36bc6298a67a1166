"""Exact deduplication: one sample per group of identical decoded pixels.
"""

from __future__ import annotations

import numpy as np

from gandata.plan.table import StagedTable
from gandata.records import Rejection


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
