"""Near-duplicate search over 64-bit hashes: multi-index hashing + union-find.

All pairs within Hamming distance ``radius`` are found without comparing all
pairs. The 64 bits are cut into ``m`` blocks; by the pigeonhole principle two
hashes within distance ``r`` agree to within ``r // m`` bits on at least one
block. So for each block we sort the block values once and, for every hash,
look up its block value and the values ``<= r // m`` bit flips away
(``searchsorted``); only those candidates are verified on all 64 bits. With
``m = r + 1`` this is the classic "one block matches exactly" scheme; for
large inputs fewer, wider blocks (about log2(n) bits each) keep the buckets
small, and ``m`` is picked by a cost estimate. Everything is vectorized numpy,
processed in chunks to bound memory; the time grows near-linearly with n for
hashes that are spread out (perceptual hashes of distinct images).

Identical hashes are collapsed first, so a heap of equal hashes (for example
many blank images) costs one entry, not a quadratic number of pairs.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

__all__ = ["UnionFind", "block_layout", "candidate_pairs", "cluster_labels", "hamming", "pairs_within"]

_CHUNK = 1 << 18  # queries per vectorized batch (bounds the candidate arrays)
# Blocks up to this width are looked up in a direct-address table of bucket
# starts (2**width entries) instead of by binary search.
_TABLE_BITS = 24


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise Hamming distance of two uint64 arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def block_layout(num_hashes: int, radius: int) -> list[tuple[int, int]]:
    """(shift, width) of each block, choosing the number of blocks whose
    estimated cost (lookups plus expected candidates to verify) is smallest."""
    best: tuple[float, int] | None = None
    for m in range(1, radius + 2):
        widest = -(-64 // m)
        flips = sum(comb(widest, k) for k in range(radius // m + 1))
        lookup = 1.0 if widest <= _TABLE_BITS else np.log2(max(num_hashes, 2))
        # A verified candidate costs a few times a table lookup.
        cost = m * flips * (lookup + 4.0 * num_hashes / 2.0 ** (64 // m))
        if best is None or cost < best[0]:
            best = (cost, m)
    m = best[1] if best else 1
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    layout, shift = [], 64
    for w in widths:
        shift -= w
        layout.append((shift, w))
    return layout


def _flip_masks(width: int, sub_radius: int) -> np.ndarray:
    masks = [0]
    for k in range(1, sub_radius + 1):
        for bits in combinations(range(width), k):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint64)


def pairs_within(hashes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs ``(i, j)``, ``i < j``, whose hashes differ in at most
    ``radius`` bits. ``hashes``: uint64 (or int64 with the same bits)."""
    values = np.asarray(hashes).view(np.uint64) if np.asarray(hashes).dtype == np.int64 else np.asarray(hashes, dtype=np.uint64)
    n = len(values)
    if n < 2 or radius < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Collapse identical hashes: members of a group pair with its first one.
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    same_i = first[inverse]
    dup = same_i != np.arange(n)
    out_i, out_j = [same_i[dup]], [np.flatnonzero(dup)]
    if radius > 0 and len(uniq) > 1:
        ui, uj = _unique_pairs(uniq, radius)
        # Connect representatives (the other members are already linked to them).
        out_i.append(first[ui])
        out_j.append(first[uj])
    i = np.concatenate(out_i).astype(np.int64)
    j = np.concatenate(out_j).astype(np.int64)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo, hi


def candidate_pairs(hashes: np.ndarray, radius: int, max_group: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Like ``pairs_within``, but expanded to member pairs for verification by
    another measure: all pairs inside a group of identical hashes, and all
    member pairs across two close groups. Groups are capped at ``max_group``
    members (in index order) so a huge heap of equal hashes stays linear; the
    members past the cap are paired with the group's first member only."""
    values = np.asarray(hashes).view(np.uint64) if np.asarray(hashes).dtype == np.int64 else np.asarray(hashes, dtype=np.uint64)
    n = len(values)
    if n < 2 or radius < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    uniq, inverse = np.unique(values, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(uniq)))])
    members = [order[bounds[g] : bounds[g + 1]] for g in range(len(uniq))]
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    for group in members:
        if len(group) > 1:
            head, rest = group[:max_group], group[max_group:]
            a, b = np.triu_indices(len(head), 1)
            out_i += [head[a], np.full(len(rest), group[0])]
            out_j += [head[b], rest]
    if radius > 0 and len(uniq) > 1:
        ui, uj = _unique_pairs(uniq, radius)
        sizes = np.diff(bounds)
        single = (sizes[ui] == 1) & (sizes[uj] == 1)
        # The common case (two distinct hashes, one image each) stays vectorized.
        out_i.append(order[bounds[ui[single]]])
        out_j.append(order[bounds[uj[single]]])
        ui, uj = ui[~single], uj[~single]
        for u, v in zip(ui.tolist(), uj.tolist()):
            a, b = members[u][:max_group], members[v][:max_group]
            out_i.append(np.repeat(a, len(b)))
            out_j.append(np.tile(b, len(a)))
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i = np.concatenate(out_i).astype(np.int64)
    j = np.concatenate(out_j).astype(np.int64)
    return np.minimum(i, j), np.maximum(i, j)


def _unique_pairs(values: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    layout = block_layout(n, radius)
    m = len(layout)
    for shift, width in layout:
        mask = np.uint64((1 << width) - 1)
        block = (values >> np.uint64(shift)) & mask
        order = np.argsort(block, kind="stable")
        sorted_block = block[order]
        table = None
        if width <= _TABLE_BITS:
            counts_per_value = np.bincount(block.astype(np.int64), minlength=1 << width)
            table = np.concatenate([[0], np.cumsum(counts_per_value)])
        for flip in _flip_masks(width, radius // m):
            for start in range(0, n, _CHUNK):
                stop = min(n, start + _CHUNK)
                query = block[start:stop] ^ flip
                if table is not None:
                    q = query.astype(np.int64)
                    lo, hi = table[q], table[q + 1]
                else:
                    lo = np.searchsorted(sorted_block, query, "left")
                    hi = np.searchsorted(sorted_block, query, "right")
                counts = hi - lo
                total = int(counts.sum())
                if total == 0:
                    continue
                qi = np.repeat(np.arange(start, stop, dtype=np.int64), counts)
                offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
                cj = order[np.repeat(lo, counts) + offsets]
                keep = qi < cj  # each unordered pair once per block (and not i with itself)
                qi, cj = qi[keep], cj[keep]
                close = hamming(values[qi], values[cj]) <= radius
                found_i.append(qi[close])
                found_j.append(cj[close])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i = np.concatenate(found_i)
    j = np.concatenate(found_j)
    # A pair close on several blocks is found several times.
    key = np.unique(i * n + j)
    return key // n, key % n


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def roots(self) -> np.ndarray:
        """The root of every element (fully compressed)."""
        return np.array([self.find(x) for x in range(len(self.parent))], dtype=np.int64)


def cluster_labels(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cluster id (the smallest member index) of each of ``n`` elements,
    given the edges ``(i, j)``; singletons are their own cluster."""
    uf = UnionFind(n)
    touched = np.unique(np.concatenate([i, j])) if len(i) else np.zeros(0, np.int64)
    for a, b in zip(i.tolist(), j.tolist()):
        uf.union(a, b)
    labels = np.arange(n, dtype=np.int64)
    if len(touched):
        roots = np.array([uf.find(int(x)) for x in touched], dtype=np.int64)
        # Name each cluster by its smallest member, independent of union order.
        smallest: dict[int, int] = {}
        for x, r in zip(touched.tolist(), roots.tolist()):
            if r not in smallest or x < smallest[r]:
                smallest[r] = x
        labels[touched] = [smallest[r] for r in roots.tolist()]
    return labels
