"""Near-duplicate search at scale: random 64-bit hashes plus planted near pairs.

    python benchmarks/dedup_scale.py [--n 1000000] [--planted 10000] [--radius 4]

Builds N uniformly random 64-bit hashes and PLANTED extra hashes, each a copy
of a random one with 1..RADIUS random bits flipped, then clusters them with
``gandata.clean.neardup`` (multi-index hashing + union-find). Prints the time
and the recall on the planted pairs (the share that ended in the same cluster
as their original; 100% is the guarantee within the radius), for 100k and for
N, so that the growth can be read off. Runs on one core: set the thread
environment before numpy loads.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from gandata.clean.neardup import cluster_labels, pairs_within, search_keys  # noqa: E402


def make_hashes(n: int, planted: int, radius: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    originals = rng.choice(n, size=planted, replace=False)
    copies = base[originals].copy()
    flips = rng.integers(1, radius + 1, size=planted)
    for k in range(planted):
        bits = rng.choice(64, size=flips[k], replace=False)
        copies[k] ^= np.bitwise_or.reduce(np.uint64(1) << bits.astype(np.uint64))
    hashes = np.concatenate([base, copies])
    return hashes, originals, np.arange(n, n + planted)


def run(n: int, planted: int, radius: int, seed: int) -> tuple[float, float, int]:
    hashes, originals, copies = make_hashes(n, planted, radius, seed)
    t0 = time.perf_counter()
    i, j = pairs_within(hashes, radius)
    labels = cluster_labels(len(hashes), i, j)
    seconds = time.perf_counter() - t0
    recall = float((labels[originals] == labels[copies]).mean()) if planted else 1.0
    return seconds, recall, len(i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--planted", type=int, default=10_000)
    parser.add_argument("--radius", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = sorted({min(100_000, args.n), args.n})
    times = {}
    for n in sizes:
        planted = max(1, args.planted * n // args.n)
        seconds, recall, pairs = run(n, planted, args.radius, args.seed)
        groups = search_keys(np.unique(make_hashes(n, planted, args.radius, args.seed)[0]), args.radius)
        keys = sum(len(masks) for _, masks in groups)
        times[n] = seconds
        print(
            f"n={n:>9,} random + {planted:,} planted, radius {args.radius}, {keys} keys in {len(groups)} lead blocks: "
            f"{seconds:.2f} s, {pairs:,} pairs, recall {100 * recall:.2f}%"
        )
    if len(sizes) == 2:
        a, b = sizes
        print(f"growth: {b / a:.0f}x hashes -> {times[b] / times[a]:.1f}x time")


if __name__ == "__main__":
    main()
