"""Read throughput: random vs sequential access to a built dataset, and vs HF datasets.

Builds N synth:shapes (default 20,000 at 32 px, 1,000 per shard: 20 shards),
then reads M samples through ``gandata.torch.TorchDataset`` in order and in a
seeded random order (what ``DataLoader(shuffle=True)`` does), and the same
images exported with ``gandata export --to hf`` through ``datasets``
(``load_from_disk``, ``ds[i]``, PNG decoded per item). Prints samples/s and the
ratios; the target is random >= 0.25x sequential. Each figure is the best of
--rounds, interleaved, so a burst of load on a shared machine hurts all alike.

    python benchmarks/read_throughput.py [--images 20000] [--reads 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _rate(read, order: np.ndarray) -> float:
    start = time.perf_counter()
    for i in order.tolist():
        read(i)
    return len(order) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=5_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from gandata.config import (
        BuildConfig,
        CleanConfig,
        ImageConfig,
        OutputConfig,
        SourceSpec,
    )
    from gandata.dataset.export import to_hf
    from gandata.pipeline import build
    from gandata.torch import TorchDataset

    work = Path(args.workdir or tempfile.mkdtemp(prefix="read-throughput-"))
    out = work / f"shapes-{args.images}"
    if not (out / "manifest.json").exists():
        build(BuildConfig(sources=(SourceSpec(f"synth:shapes?count={args.images}&size={args.size}"),), output=str(out),
                          image=ImageConfig(size_px=args.size), out=OutputConfig(shard_size=1000),
                          clean=CleanConfig(enabled=False)))
    hf_dir = work / f"hf-{args.images}"
    if not (hf_dir / "dataset_info.json").exists():
        to_hf(out, hf_dir, overwrite=True)
    import datasets

    hf = datasets.load_from_disk(str(hf_dir))
    tds = TorchDataset(out)
    n = len(tds)
    rng = np.random.default_rng(0)
    reads = min(args.reads, n)
    sequential = np.arange(reads)
    shuffled = rng.permutation(n)[:reads]
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, read, order in [
            ("gandata sequential", tds.__getitem__, sequential),
            ("gandata random", tds.__getitem__, shuffled),
            ("hf sequential", hf.__getitem__, sequential),
            ("hf random", hf.__getitem__, shuffled),
        ]:
            tds = TorchDataset(out)  # a fresh reader each round: no warm handles carried over
            read = tds.__getitem__ if name.startswith("gandata") else read
            best[name] = max(best.get(name, 0.0), _rate(read, order))
    print(f"{n} samples, {len(tds.ds.shards)} shards, {args.size} px; {reads} reads per figure, best of {args.rounds}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, rate in best.items():
        print(f"  {name:20s} {rate:10.0f} samples/s")
    print(f"  gandata random / sequential: {best['gandata random'] / best['gandata sequential']:.2f}x (target >= 0.25x)")
    print(f"  gandata random / hf random:  {best['gandata random'] / best['hf random']:.1f}x")


if __name__ == "__main__":
    main()
