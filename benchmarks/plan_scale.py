"""Plan-step scaling: peak memory and time of the global plan at 1M and 10M samples.

Writes synthetic staged metadata (meta.parquet per partition of 50,000 rows;
no images are decoded or written) and runs the plan step on it with cleaning
on, each size in a fresh process, printing its peak RSS (VmHWM) and time,
the ratios between the largest and the smallest size, and the near-duplicate
recall against the planted truth.

The metadata is shaped like a real build's:
- perceptual hashes: 60% uniform, 40% around 5,000 "style" centres with 10
  flipped bits each (crowded hash buckets, like photos of one kind, but rarely
  within the search radius of each other);
- planted near-duplicate clusters (1% of the rows, 2-5 members): hashes
  within 2 bits of the cluster's first member, thumbnails with noise
  (correlation > 0.99), the same mean colour; plus exact duplicates (0.3%)
  that copy another row's content hash;
- 20 classes with a Zipf-like skew (the largest about 20x the smallest).

Recall is the share of the planted removals (cluster size - 1 each) that the
plan rejects as near_duplicate or duplicate; "extra" counts rejected rows
outside every planted group.

    python benchmarks/plan_scale.py [--sizes 1000000,10000000] [--workdir DIR] [--memory-budget GIB]

On a shared 2-core machine 10M takes long; --sizes 1000000,3000000 gives
the same ratios at a smaller scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PART_ROWS = 50_000
THUMB = 256  # 16x16 grayscale thumbnail bytes
CLASSES = [f"class{c:02d}" for c in range(20)]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _flip(values: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Each value with ``bits`` distinct random bits flipped."""
    out = values.copy()
    for k in range(len(out)):
        for b in rng.choice(64, size=bits, replace=False):
            out[k] ^= np.uint64(1) << np.uint64(int(b))
    return out


def make_staged(root: Path, n: int, seed: int = 0) -> tuple[list[str], dict[str, int]]:
    """Write ``n`` rows of synthetic staged metadata under ``root``; returns
    the partition directories and the planted truth ({key: cluster id}) size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    truth_file = root / "truth.json"
    if truth_file.exists():  # made by an earlier run: same seed, same rows
        return sorted(str(p) for p in root.glob("ingest-bench/part-*")), json.loads(truth_file.read_text())
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**63, size=5000, dtype=np.int64).view(np.uint64)
    weights = 1.0 / np.arange(1, len(CLASSES) + 1) ** 1.0
    weights /= weights.sum()
    parts: list[str] = []
    planted_rows = 0
    planted_removals = 0
    for p, start in enumerate(range(0, n, PART_ROWS)):
        m = min(PART_ROWS, n - start)
        part_dir = root / "ingest-bench" / f"part-000-{p:06d}"
        parts.append(str(part_dir))
        prng = np.random.default_rng([seed, p])
        hashes = prng.integers(0, 2**63, size=m, dtype=np.int64).view(np.uint64) | (prng.integers(0, 2, m).astype(np.uint64) << np.uint64(63))
        styled = prng.random(m) < 0.4
        hashes[styled] = centres[prng.integers(0, len(centres), int(styled.sum()))]
        styled_idx = np.flatnonzero(styled)
        # 10 flipped bits per styled hash, vectorized: XOR with a random 10-bit mask.
        masks = np.zeros(len(styled_idx), np.uint64)
        for _ in range(10):
            masks |= np.uint64(1) << prng.integers(0, 64, len(styled_idx)).astype(np.uint64)
        hashes[styled_idx] ^= masks
        thumbs = prng.integers(0, 256, (m, THUMB), dtype=np.uint8)
        content = prng.integers(0, 256, (m, 16), dtype=np.uint8)
        sums = prng.uniform(50, 200, (m, 3)) * 256
        labels = prng.choice(len(CLASSES), size=m, p=weights)
        cluster = np.full(m, -1, np.int64)
        # Planted near-duplicate clusters: 1% of the rows.
        i = 0
        while i < int(0.01 * m):
            size = int(prng.integers(2, 6))
            head = int(prng.integers(0, m - size))
            members = np.arange(head, head + size)
            if (cluster[members] >= 0).any():
                i += size
                continue
            cluster[members] = start + head
            hashes[members[1:]] = _flip(np.repeat(hashes[head], size - 1), int(prng.integers(0, 3)), prng)
            noise = prng.normal(0, 2, (size - 1, THUMB))
            thumbs[members[1:]] = np.clip(thumbs[head].astype(np.float64) + noise, 0, 255).astype(np.uint8)
            sums[members[1:]] = sums[head]
            labels[members] = labels[head]
            planted_rows += size
            planted_removals += size - 1
            i += size
        # Exact duplicates: 0.3% of the rows copy the content hash of another row.
        free = np.flatnonzero(cluster < 0)
        dups = prng.choice(free, size=int(0.003 * m) * 2, replace=False).reshape(-1, 2)
        for a, b in dups.tolist():
            content[b] = content[a]
            hashes[b] = hashes[a]
            thumbs[b] = thumbs[a]
            sums[b] = sums[a]
            labels[b] = labels[a]
            cluster[a] = cluster[b] = start + a
        planted_rows += 2 * len(dups)
        planted_removals += len(dups)
        keys = [f"img{start + k:09d}" for k in range(m)]
        provenance = [json.dumps({"planted": int(c)}) if c >= 0 else "{}" for c in cluster.tolist()]
        table = pa.table({
            "key": pa.array(keys, pa.string()),
            "locator": pa.array([f"bench/{k}.jpg" for k in keys], pa.string()),
            "label": pa.array([CLASSES[c] for c in labels.tolist()], pa.string()),
            "original_width": pa.array(np.full(m, 256, np.int32)),
            "original_height": pa.array(np.full(m, 256, np.int32)),
            "upscale": pa.array(np.ones(m, np.float32)),
            "content_hash": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), m, [None, pa.py_buffer(content.tobytes())]),
            "channel_sum": pa.FixedSizeListArray.from_arrays(pa.array(sums.ravel()), 3).cast(pa.list_(pa.float64())),
            "channel_sumsq": pa.FixedSizeListArray.from_arrays(pa.array((sums * 200).ravel()), 3).cast(pa.list_(pa.float64())),
            "provenance": pa.array(provenance, pa.string()),
            "score_std": pa.array(np.full(m, 40, np.float32)),
            "score_p99": pa.array(np.full(m, 220, np.float32)),
            "score_p01": pa.array(np.full(m, 20, np.float32)),
            "score_blur": pa.array(np.full(m, 1.6, np.float32)),
            "score_color": pa.array(np.full(m, 12, np.float32)),
            "score_sharpness": pa.array(prng.uniform(0, 1, m).astype(np.float32)),
            "phash": pa.array(hashes.view(np.int64)),
            "thumb": pa.array([t.tobytes() for t in thumbs], pa.binary()),
        })
        part_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, part_dir / "meta.parquet.tmp")
        os.replace(part_dir / "meta.parquet.tmp", part_dir / "meta.parquet")
    truth = {"planted_rows": planted_rows, "planted_removals": planted_removals}
    truth_file.write_text(json.dumps(truth))
    return parts, truth


def run_plan(root: Path, memory_budget_gb: float | None) -> dict:
    """Run the plan step on the staged metadata in ``root`` (this process)."""
    from gandata.config import BuildConfig, SourceSpec
    from gandata.plan.make import make_plan
    from gandata.plan.table import load_staged

    parts = sorted(str(p) for p in root.glob("ingest-bench/part-*"))
    config = BuildConfig(sources=(SourceSpec("bench"),), output=str(root / "out"), memory_budget_gb=memory_budget_gb)
    # A build starts without the plan's files; an earlier run's would be
    # replaced inside the timing (unlinking 2.5 GB of thumbnails takes 1 s).
    shutil.rmtree(root / "spill", ignore_errors=True)
    start = time.perf_counter()
    # As a build does: spill above the budget, thumbnails copied to one file.
    staged = load_staged(parts, [0] * len(parts), ["bench"], memory_budget=config.memory_budget_bytes,
                         spill_dir=root / "spill", thumbs_file=root / "spill" / "thumbnails.u8")
    loaded = time.perf_counter()
    plan = make_plan(staged, config, [None])
    done = time.perf_counter()
    removed = [r for r in plan.rejections if r.reason in ("near_duplicate", "duplicate")]
    # Rejected rows inside a planted group (their provenance names it) vs outside every one.
    rows = np.array([int(r.key[3:]) for r in removed], dtype=np.int64)  # img<row>: the row is in the key
    flags = staged.strings("provenance", rows)
    planted = sum(1 for f in flags if f != "{}")
    extra = len(flags) - planted
    return {"rows": staged.num_rows, "load_s": loaded - start, "plan_s": done - loaded, "total_s": done - start,
            "peak_rss_gb": _status_kib("VmHWM") / 2**20, "removed_planted": planted, "removed_extra": extra,
            "kept": int(len(plan.rows))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--memory-budget", type=float, default=None, help="GiB (default: the build's default)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_plan(Path(args.child), args.memory_budget)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="plan-scale-"))
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        root = work / f"staged-{n}"
        t0 = time.perf_counter()
        _, truth = make_staged(root, n)
        made = time.perf_counter() - t0
        cmd = [sys.executable, __file__, "--child", str(root)]
        if args.memory_budget is not None:
            cmd += ["--memory-budget", str(args.memory_budget)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        figures.update(truth, n=n, made_s=made)
        figures["recall"] = figures["removed_planted"] / max(truth["planted_removals"], 1)
        results.append(figures)
        print(f"{n:>11,} rows: plan {figures['total_s']:7.1f} s (load {figures['load_s']:.1f} s), peak RSS "
              f"{figures['peak_rss_gb']:.2f} GiB, near-dup recall {figures['recall']:.4f} "
              f"({figures['removed_planted']}/{truth['planted_removals']}), extra removals {figures['removed_extra']}",
              flush=True)
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(f"ratio {large['n'] // small['n']}x rows: time {large['total_s'] / small['total_s']:.2f}x, "
              f"peak RSS {large['peak_rss_gb'] / small['peak_rss_gb']:.2f}x")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
