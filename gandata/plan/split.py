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
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups.tolist()):
        members.setdefault(g, []).append(i)
    group_list = list(members.values())
    rank = rng.permutation(len(group_list))
    order = sorted(range(len(group_list)), key=lambda k: (-len(group_list[k]), int(rank[k])))
    classes, counts = np.unique(labels, return_counts=True)
    target = {int(c): int(round(fraction * int(k))) for c, k in zip(classes, counts)}
    taken = {c: 0 for c in target}
    for k in order:
        idx = group_list[k]
        cls = int(labels[idx[0]])
        if taken[cls] + len(idx) <= target[cls]:
            val[idx] = True
            taken[cls] += len(idx)
    return val
