"""The stratified validation split, with duplicate groups kept on one side.

Works on per-sample labels and group ids only. A group is a near-duplicate
cluster when the cleaning step provides one (``Plan.cluster_ids``),
otherwise the exact content hash: two members of one group on different
sides would leak training images into validation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


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
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, ids, np.arange(n, dtype=np.int64))
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
