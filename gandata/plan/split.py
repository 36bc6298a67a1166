"""The stratified validation split, with duplicate groups kept on one side,
and the splits sources assign themselves.

Works on per-sample labels and group ids only. A group is a near-duplicate
cluster when the cleaning step provides one (``Plan.cluster_ids``),
otherwise the exact content hash: two members of one group on different
sides would leak training images into validation.

A source may put a sample in a split (the folder source's split layout,
``Sample.split``; staged as the ``split`` column). Such a split is kept as
given; ``--val-fraction`` cuts validation only from the samples without one,
and a sample without one whose duplicate group has a member with one follows
that member (the first in plan order), so the cut adds no leak of its own.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow.compute as pc

from gandata.dataset.splits import SPLIT_ORDER
from gandata.errors import BuildError
from gandata.util.arrow import to_numpy

# Split codes of the plan step: an index into SPLIT_ORDER, NO_SPLIT for none.
TRAIN, VAL = SPLIT_ORDER.index("train"), SPLIT_ORDER.index("val")
NO_SPLIT = -1


def preassigned_splits(staged: Any) -> np.ndarray | None:
    """int8 code per staged row of the split its source assigned (an index
    into SPLIT_ORDER, NO_SPLIT for none), or None when no source assigned
    any (the staged table has no ``split`` column, or only nulls).

    BuildError naming the names for a split outside SPLIT_ORDER (a plugin
    source's bug: the manifest only knows these)."""
    if "split" not in staged.table.column_names or staged.num_rows == 0:
        return None
    column = staged.table.column("split")
    if column.null_count == len(column):
        return None
    encoded = pc.dictionary_encode(column, null_encoding="encode").combine_chunks()
    names = encoded.dictionary.to_pylist()
    unknown = sorted(n for n in names if n is not None and n not in SPLIT_ORDER)
    if unknown:
        raise BuildError(f"a source assigned the split(s) {', '.join(map(repr, unknown))}; splits are {', '.join(SPLIT_ORDER)}")
    table = np.array([SPLIT_ORDER.index(n) if n is not None else NO_SPLIT for n in names], np.int8)
    return table[to_numpy(encoded.indices).astype(np.int64)]


def follow_groups(groups: np.ndarray, codes: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Split code per entry for the ``free`` entries whose group holds an
    entry with a code (``codes >= 0``; the first such entry's code), NO_SPLIT
    elsewhere: a duplicate of a pre-assigned sample goes where it went."""
    out = np.full(len(codes), NO_SPLIT, np.int8)
    fixed = np.flatnonzero(codes >= 0)
    if len(fixed) == 0 or len(groups) == 0:
        return out
    first_groups, first = np.unique(groups[fixed], return_index=True)
    group_code = np.full(int(groups.max()) + 1, NO_SPLIT, np.int8)
    group_code[first_groups] = codes[fixed[first]]
    follow = free & (group_code[groups] >= 0)
    out[follow] = group_code[groups[follow]]
    return out


def group_ids(content_hashes: Sequence[bytes], cluster_ids: np.ndarray | None = None) -> np.ndarray:
    """Dense int group id per sample: the cluster id where given (>= 0),
    else one group per distinct content hash."""
    ids = np.empty(len(content_hashes), dtype=np.int64)
    seen: dict[object, int] = {}
    for i, h in enumerate(content_hashes):
        key: object = ("c", int(cluster_ids[i])) if cluster_ids is not None and cluster_ids[i] >= 0 else ("h", h)
        ids[i] = seen.setdefault(key, len(seen))
    return ids


def dense_group_ids(content_groups: np.ndarray, cluster_ids: np.ndarray | None = None) -> np.ndarray:
    """``group_ids`` on integer arrays: ``content_groups`` is a content-hash
    group id per sample (``StagedTable.content_groups``). Same ids: dense,
    in order of first appearance."""
    raw = np.asarray(content_groups, dtype=np.int64)
    if cluster_ids is not None and len(raw):
        cluster_ids = np.asarray(cluster_ids, dtype=np.int64)
        # Content groups shifted past every cluster id, so the two never collide.
        offset = max(int(cluster_ids.max()), -1) + 1
        raw = np.where(cluster_ids >= 0, cluster_ids, raw + offset)
    return _first_appearance_ids(raw)


def min_per_group(groups: np.ndarray, values: np.ndarray, num_groups: int, fill: int) -> np.ndarray:
    """The smallest of ``values`` in each group (``groups``: a dense id per
    value, below ``num_groups``), ``fill`` for a group with none. A linear
    pass: finding first members with np.unique would sort."""
    out = np.full(num_groups, fill, dtype=np.int64)
    np.minimum.at(out, groups, values)
    return out


def _first_appearance_ids(values: np.ndarray) -> np.ndarray:
    """Dense ids 0.. of ``values``, numbered in order of first appearance."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first), dtype=np.int64)
    return rank[inverse.reshape(-1)]


def stratified_split(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of the samples that go to validation.

    Per class, the target is ``round(fraction * count)``. Groups are placed
    whole: larger groups first (they are hardest to fit), in seeded random
    order within a size, each into validation while it fits the target of
    its class (the class of its first member). Singletons then fill the target
    exactly, so with enough singletons every class is within one sample of
    its proportion.
    """
    n = len(labels)
    val = np.zeros(n, dtype=bool)
    if n == 0 or fraction <= 0:
        return val
    rng = np.random.default_rng([seed, 0x5917])
    # Groups numbered by first appearance; sizes and first members as arrays.
    ids = _first_appearance_ids(np.asarray(groups))
    sizes = np.bincount(ids)
    first = min_per_group(ids, np.arange(n, dtype=np.int64), len(sizes), n)
    rank = rng.permutation(len(sizes))
    order = np.lexsort((rank, -sizes))
    classes, counts = np.unique(labels, return_counts=True)
    target = {int(c): int(round(fraction * int(k))) for c, k in zip(classes, counts)}
    taken = {c: 0 for c in target}
    chosen = np.zeros(len(sizes), dtype=bool)
    group_class = labels[first].tolist()
    size_of = sizes.tolist()
    for k in order.tolist():
        cls = int(group_class[k])
        if taken[cls] + size_of[k] <= target[cls]:
            chosen[k] = True
            taken[cls] += size_of[k]
    return chosen[ids]
