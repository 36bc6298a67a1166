"""Near-duplicate search over 64-bit hashes: multi-index hashing + union-find.

All pairs within Hamming distance ``radius`` are found without comparing all
pairs. The 64 bits are cut into ``b > radius`` blocks; by the pigeonhole
principle two hashes within distance ``r`` agree exactly on at least
``b - r`` blocks. So for every choice of ``b - r`` blocks (a key) the hashes
are sorted by key, and only hashes with equal keys are verified on all 64
bits (the manner of Manku et al., "Detecting near-duplicates for web
crawling", 2007). More blocks give wider keys (fewer chance candidates) but
more keys; ``b`` is chosen by a cost measured on a sample of the data, and
the blocks mix high- and low-entropy bits so that no key crowds into few
values. Everything is vectorized numpy, in batches of bounded size; each key
is one task for an executor (Ray).

Identical hashes are collapsed first, so a heap of equal hashes (for example
many blank images) costs one entry, not a quadratic number of pairs."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

__all__ = ["UnionFind", "candidate_pairs", "cluster_labels", "hamming", "pairs_within", "search_keys"]

_MAX_CANDIDATES = 1 << 22  # candidates verified per batch (bounds memory)
# Run partners compared offset by offset (sequential reads) before the rest
# of a crowded run is expanded in batches.
_DIAGONALS = 32
# Hashes per part of a key join: small enough to stay in the CPU cache.
_PART_ROWS = 1 << 16
# Cost weights of the search, per hash of a key and per candidate pair
# (measured on 1M and 10M hashes, 2 cores).
_KEY_COST = 1.0
_PAIR_COST = 0.5
_COST_SAMPLE = 1 << 16  # hashes sampled to choose the keys


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise Hamming distance of two uint64 arrays (uint8: at most 64,
    and no widening copy on the search's hot path)."""
    return np.bitwise_count(np.bitwise_xor(a, b))


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


def candidate_pairs(hashes: np.ndarray, radius: int, max_group: int = 256, executor: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Like ``pairs_within``, but expanded to member pairs for verification by
    another measure: all pairs inside a group of identical hashes, and all
    member pairs across two close groups. Groups are capped at ``max_group``
    members (in index order) so a huge heap of equal hashes stays linear; the
    members past the cap are paired with the group's first member only.
    ``executor`` (anything with ``imap(fn, tasks)``, e.g. the Ray executor)
    runs the per-block searches as tasks; the pairs are the same."""
    values = np.asarray(hashes).view(np.uint64) if np.asarray(hashes).dtype == np.int64 else np.asarray(hashes, dtype=np.uint64)
    n = len(values)
    if n < 2 or radius < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # One stable sort gives the distinct hashes and their members in index
    # order (np.unique plus an argsort of its inverse would sort twice).
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    uniq = ordered[starts]
    del ordered
    bounds = np.concatenate([starts, [n]])
    sizes = np.diff(bounds)
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    multi = np.flatnonzero(sizes > 1)  # groups of identical hashes
    if len(multi):
        i, j = _pairs_inside(order, bounds[multi], sizes[multi], max_group)
        out_i.append(i)
        out_j.append(j)
    if radius > 0 and len(uniq) > 1:
        ui, uj = _unique_pairs(uniq, radius, executor)
        single = (sizes[ui] == 1) & (sizes[uj] == 1)
        # The common case (two distinct hashes, one image each) is one gather.
        out_i.append(order[bounds[ui[single]]])
        out_j.append(order[bounds[uj[single]]])
        ui, uj = ui[~single], uj[~single]
        # Other close groups: every (capped) member of one with every member
        # of the other, pair by pair in the order a nested loop would give.
        na, nb = np.minimum(sizes[ui], max_group), np.minimum(sizes[uj], max_group)
        pair, k = _expand(np.arange(len(ui)), np.zeros(len(ui), np.int64), na * nb)
        out_i.append(order[bounds[ui[pair]] + k // nb[pair]])
        out_j.append(order[bounds[uj[pair]] + k % nb[pair]])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i = np.concatenate(out_i).astype(np.int64)
    j = np.concatenate(out_j).astype(np.int64)
    return np.minimum(i, j), np.maximum(i, j)


def _pairs_inside(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray, max_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Member pairs of groups of identical hashes (members ``order[start :
    start + size]``): every pair among the first ``max_group`` members, and
    each later member with the first. Vectorized over the groups: a build
    with 10M images has tens of thousands of such groups."""
    head = np.minimum(sizes, max_group)
    # One row (group, a) for a in 0..head-2, pairing member a with a+1..head-1.
    row_group, a = _expand(np.arange(len(sizes)), np.zeros(len(sizes), np.int64), head - 1)
    member = starts[row_group] + a
    first, second = _expand(member, member + 1, starts[row_group] + head[row_group])
    lead, late = _expand(starts, starts + head, starts + sizes)
    return np.concatenate([order[first], order[lead]]), np.concatenate([order[second], order[late]])


def _entropy_order(values: np.ndarray) -> list[int]:
    """Bit positions from the highest to the lowest entropy over ``values``."""
    ones = np.array([np.count_nonzero((values >> np.uint64(b)) & np.uint64(1)) for b in range(64)], np.float64)
    p = np.clip(ones / max(len(values), 1), 1e-12, 1 - 1e-12)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.argsort(-entropy, kind="stable").tolist()


def _bit_blocks(order: list[int], m: int) -> list[int]:
    """Split the 64 bit positions into ``m`` blocks (as bit masks) that each
    mix high- and low-entropy bits (``order``: by entropy, dealt out in
    snake order).

    Any partition of the bits keeps the pigeonhole guarantee; what matters
    for speed is that no key's values crowd into a few buckets. Perceptual
    hashes of similar images (the low DCT frequencies of simple shapes)
    agree on whole runs of adjacent bits, so contiguous blocks made the
    candidate lists ~4x longer on 400,000 synth:shapes."""
    masks = [0] * m
    for k, bit in enumerate(order):
        turn = k % m
        masks[turn if (k // m) % 2 == 0 else m - 1 - turn] |= 1 << bit
    return masks


def search_keys(values: np.ndarray, radius: int) -> list[tuple[int, list[int]]]:
    """The exact-match keys to join on, as bit masks, grouped by a lead block
    that every key of the group contains: the bits are cut into ``b`` blocks
    (``_bit_blocks``) and every choice of ``b - radius`` of them is one key.
    Two hashes within ``radius`` bits differ in at most ``radius`` blocks, so
    they agree on all blocks of at least one key (pigeonhole): joining on
    every key finds every pair. More blocks mean wider keys (fewer chance
    candidates, which grow with n squared) but more keys; ``b`` is chosen by
    the cost measured on an evenly spaced sample of the hashes: a linear pass
    per key, plus the candidate pairs expected at full size."""
    n = len(values)
    sample = values[np.linspace(0, n - 1, min(n, _COST_SAMPLE)).astype(np.int64)]
    scale = (n / len(sample)) ** 2
    order = _entropy_order(sample)
    best: tuple[float, list[tuple[int, list[int]]]] | None = None
    # Beyond radius + 3 blocks the keys (35+ for radius 4) cost more than they save.
    for blocks_count in range(radius + 1, min(64, radius + 3) + 1):
        blocks = _bit_blocks(order, blocks_count)
        groups: dict[int, list[int]] = {}
        pairs = 0.0
        for combo in combinations(range(blocks_count), blocks_count - radius):
            mask = sum(blocks[k] for k in combo)
            groups.setdefault(blocks[combo[0]], []).append(mask)
            counts = np.unique(sample & np.uint64(mask), return_counts=True)[1].astype(np.float64)
            pairs += float((counts * (counts - 1) / 2).sum()) * scale
        keys = sum(len(g) for g in groups.values())
        # Weights measured on 1M and 10M hashes (2 cores): a key costs about
        # _KEY_COST per hash, a candidate pair about _PAIR_COST.
        cost = keys * n * _KEY_COST + _PAIR_COST * pairs
        if best is None or cost < best[0]:
            best = (cost, list(groups.items()))
    assert best is not None
    return best[1]


def _unique_pairs(values: np.ndarray, radius: int, executor: Any = None) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    tasks = [KeyJoin(values, lead, masks, radius) for lead, masks in search_keys(values, radius)]
    if executor is None:
        results = [join_on_key(task) for task in tasks]
    else:
        # Results keyed by task index: completion order never matters.
        found = dict(executor.imap(join_on_key, tasks))
        results = [found[k] for k in range(len(tasks))]
    results = [r for r in results if len(r[0])]
    if not results:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i = np.concatenate([r[0] for r in results])
    j = np.concatenate([r[1] for r in results])
    # A pair that agrees on several keys is found several times (a sort, not
    # np.unique: its hash path is slower here).
    key = np.sort(i * n + j)
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    return key // n, key % n


@dataclass
class KeyJoin:
    """One task of the search: the hashes, the bit mask of a lead block, the
    keys (bit masks) that contain it, and the radius."""

    values: np.ndarray
    lead: int
    masks: list[int]
    radius: int


def join_on_key(task: KeyJoin) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``i < j`` within the radius whose bits are equal on one of
    the task's keys.

    Hashes equal on a key are equal on its lead block, so the hashes are
    first cut into parts of about ``_PART_ROWS`` by the lead block's bits
    (one linear radix pass) and every key is joined inside each part. A
    part fits in the CPU cache: one global sort per key of 10M hashes was
    20x slower than of 1M, from cache misses alone."""
    values = task.values
    n = len(values)
    part_bits = max(0, min(16, int(np.ceil(np.log2(max(n, 1) / _PART_ROWS)))))
    if part_bits == 0:
        rows, bounds = np.arange(n, dtype=np.int64), np.array([0, n], dtype=np.int64)
    else:
        part = (_hash32(values & np.uint64(task.lead)) >> np.uint32(32 - part_bits)).astype(np.uint16)
        rows = np.argsort(part, kind="stable")  # radix: linear
        bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=1 << part_bits))])
        del part
    grouped = values[rows]
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if b - a < 2:
            continue
        for mask in task.masks:
            i, j = _join_part(grouped[a:b], mask, task.radius)
            if len(i):
                i, j = rows[a + i], rows[a + j]
                found_i.append(np.minimum(i, j))
                found_j.append(np.maximum(i, j))
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(found_i), np.concatenate(found_j)


def _join_part(values: np.ndarray, mask: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of ``values`` within ``radius`` whose ``mask`` bits are equal.

    The keys are grouped by a radix order of a 32-bit hash of the masked bits
    (a collision only adds candidates, which the check on all 64 bits drops).
    Each sorted position is then compared with the next ``d`` positions of
    its run, one offset ``d`` at a time, so the reads are sequential; only
    the rare matches are mapped back to indices."""
    n = len(values)
    bucket = _hash32(values & np.uint64(mask))
    order = _radix_order(bucket)
    sorted_bucket = bucket[order]
    sorted_values = values[order]
    run_start = np.flatnonzero(np.concatenate([[True], sorted_bucket[1:] != sorted_bucket[:-1]]))
    run_end = np.concatenate([run_start[1:], [n]])
    end_of = np.repeat(run_end, run_end - run_start)  # per sorted position: the end of its run
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []

    def keep(pos: np.ndarray, other: np.ndarray) -> None:
        close = hamming(sorted_values[pos], sorted_values[other]) <= radius
        if close.any():
            found_i.append(order[pos[close]])
            found_j.append(order[other[close]])

    active = np.flatnonzero(end_of > np.arange(1, n + 1, dtype=np.int64))
    for d in range(1, _DIAGONALS + 1):
        if d > 1:
            active = active[active + d < end_of[active]]
        if not len(active):
            break
        keep(active, active + d)
    # Crowded runs: the partners past the last offset, in batches of bounded size.
    rest = active[active + _DIAGONALS + 1 < end_of[active]]
    counts = end_of[rest] - rest - _DIAGONALS - 1
    for a, b in _batches(counts):
        keep(*_expand(rest[a:b], rest[a:b] + _DIAGONALS + 1, end_of[rest[a:b]]))
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(found_i), np.concatenate(found_j)


def _hash32(keys: np.ndarray) -> np.ndarray:
    """A 32-bit multiplicative hash of uint64 keys (Fibonacci hashing): equal
    keys stay equal, distinct ones rarely collide."""
    return ((keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)).astype(np.uint32)


def _radix_order(keys: np.ndarray) -> np.ndarray:
    """An order that sorts uint32 ``keys``: two stable passes over 16-bit
    digits, which numpy sorts by radix in linear time (a comparison sort of
    10M keys is 20x slower than of 1M, from cache misses)."""
    low = np.argsort((keys & np.uint32(0xFFFF)).astype(np.uint16), kind="stable")
    high = (keys >> np.uint32(16)).astype(np.uint16)[low]
    return low[np.argsort(high, kind="stable")]


def _batches(counts: np.ndarray) -> list[tuple[int, int]]:
    """Cut a run of queries into batches of at most ``_MAX_CANDIDATES``
    candidates (at least one query each), so memory is bounded however
    crowded the buckets are."""
    total = np.cumsum(counts)
    out, a = [], 0
    while a < len(counts):
        before = int(total[a - 1]) if a else 0
        b = max(a + 1, int(np.searchsorted(total, before + _MAX_CANDIDATES, "right")))
        if int(total[min(b, len(counts)) - 1]) > before:
            out.append((a, min(b, len(counts))))
        a = b
    return out


def _expand(queries: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, candidate) for every query and every position in ``[lo, hi)``
    of its range."""
    counts = hi - lo
    total = int(counts.sum())
    qi = np.repeat(queries, counts)
    # The range start plus the rank inside it.
    pos = np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return qi, pos


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
