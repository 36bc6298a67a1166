"""Peak memory while reading a HuggingFace dataset: 20k vs 100k records.

Writes two ``save_to_disk`` datasets of small PNGs (an ``Image`` feature and a
``ClassLabel``), then, each in a fresh process, (1) reads every record through
the ``hf-disk:`` source partition by partition, and (2) runs a whole serial
build at the source size. Prints the peak RSS (ru_maxrss) of each process and its peak anonymous RSS
(sampled RssAnon: the heap, without memory-mapped Arrow pages).
Flat memory means the 100k figure is close to the 20k one: the source never
materializes the dataset, only one partition's batch at a time.

    python benchmarks/hf_streaming_memory.py [--sizes 20000,100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from procstat import status_kib


def make_dataset(path: Path, n: int, size_px: int) -> None:
    import datasets
    from PIL import Image

    datasets.disable_progress_bars()
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (256, size_px, size_px, 3), dtype=np.uint8)

    def rows():
        for i in range(n):
            buf = io.BytesIO()
            image = palette[i % 256].copy()
            image[0, 0] = (i % 251, (i // 251) % 251, (i // 63001) % 251)  # every record distinct
            Image.fromarray(image).save(buf, format="PNG", compress_level=1)
            yield {"image": {"bytes": buf.getvalue(), "path": None}, "label": i % 10}

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=[f"c{i}" for i in range(10)])})
    ds = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(path.parent / f"cache-{n}"))
    ds.save_to_disk(str(path))
    shutil.rmtree(path.parent / f"cache-{n}", ignore_errors=True)


class AnonPeak:
    """Samples RssAnon (/proc/self/status) every 20 ms: the process's own
    heap, without the file-backed pages of memory-mapped Arrow files, which
    ru_maxrss also counts although the kernel can drop them at any time."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def read_kib() -> int:
        return status_kib("RssAnon")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.read_kib())
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, self.read_kib())
        return self.peak_kib / 1024


def child(mode: str, path: str, out: str, size_px: int) -> None:
    """Runs in a fresh process; prints one JSON line."""
    t0 = time.perf_counter()
    anon = AnonPeak()
    if mode == "read":
        from gandata.config import SourceSpec
        from gandata.sources import SourceContext, open_source

        source = open_source(SourceSpec(f"hf-disk:{path}"), SourceContext(size_px=size_px))
        count = 0
        for partition in source.partitions():
            for _ in source.read(partition):
                count += 1
    else:
        from gandata.config import BuildConfig, ImageConfig, SourceSpec
        from gandata.pipeline import build

        summary = build(BuildConfig(sources=(SourceSpec(f"hf-disk:{path}"),), output=out,
                                    image=ImageConfig(size_px=size_px), workers=1, executor="serial"))
        count = summary.num_samples
    anon_mib = anon.stop()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"mode": mode, "records": count, "peak_rss_mib": round(peak_mib, 1), "peak_anon_mib": round(anon_mib, 1),
                      "seconds": round(time.perf_counter() - t0, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--size-px", type=int, default=16)
    parser.add_argument("--keep", help="work directory to keep (default: a temporary one, removed)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2], args.size_px)
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="gandata-hfmem-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = {}
        for n in (int(s) for s in args.sizes.split(",")):
            path = work / f"ds-{n}"
            if not path.exists():
                make_dataset(path, n, args.size_px)
            for mode in ("read", "build"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--size-px", str(args.size_px), "--child", mode, str(path), str(work / f"out-{n}")],
                    capture_output=True, text=True, check=True,
                )
                line = json.loads(proc.stdout.strip().splitlines()[-1])
                results[(mode, n)] = line
                print(f"{mode:>5} {n:>7} records: peak RSS {line['peak_rss_mib']:.1f} MiB, peak anonymous RSS "
                      f"{line['peak_anon_mib']:.1f} MiB ({line['seconds']} s, {line['records']} samples)")
            shutil.rmtree(work / f"out-{n}", ignore_errors=True)
        sizes = sorted({n for _, n in results})
        if len(sizes) >= 2:
            lo, hi = sizes[0], sizes[-1]
            for mode in ("read", "build"):
                ratio = results[(mode, hi)]["peak_rss_mib"] / results[(mode, lo)]["peak_rss_mib"]
                anon = results[(mode, hi)]["peak_anon_mib"] / results[(mode, lo)]["peak_anon_mib"]
                print(f"{mode:>5} {hi} / {lo} records: peak RSS ratio {ratio:.2f}, peak anonymous RSS ratio {anon:.2f} "
                      f"(records ratio {hi / lo:.1f})")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
