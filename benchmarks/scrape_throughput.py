"""Scrape throughput: gandata's urls: source vs img2dataset on the same URL list.

Serves a few hundred PNGs from a local HTTP server (tests/common/web_server.py,
with a per-image delay standing in for network latency), then downloads the
same URL list with gandata (urls:FILE, decode + 64 px resize + shards) and with
img2dataset (64 px center crop, files output) at equal concurrency
(WORKERS processes x CONCURRENCY requests each), printing images/s, success
counts and the ratio. A second, small run compares correctness: requests the
server saw to a robots.txt-disallowed path, and the bytes it had to send for
an endless oversized body.

img2dataset is taken from a separate environment (never the project's):

    python -m venv /tmp/i2d-venv && /tmp/i2d-venv/bin/pip install img2dataset
    python benchmarks/scrape_throughput.py [--images 400] [--workers 2] [--concurrency 16] \
        [--img2dataset /tmp/i2d-venv/bin/img2dataset]

Without it, gandata's figures are printed and the comparison is reported as skipped.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gandata.config import BuildConfig, ImageConfig, SourceSpec  # noqa: E402
from gandata.pipeline import build  # noqa: E402
from tests.common.web_server import WebServer  # noqa: E402


def run_gandata(url_file: Path, out: Path, workers: int, concurrency: int) -> tuple[float, int, dict[str, int]]:
    params = {"concurrency": str(concurrency), "host_concurrency": str(concurrency * workers),
              "batch": "32", "max_bytes": "2000000", "retries": "0", "read_timeout_s": "5"}
    config = BuildConfig(
        sources=(SourceSpec(f"urls:{url_file}", params=params),), output=str(out),
        image=ImageConfig(size_px=64, min_size_px=8), workers=workers, allow_private_network=True, dedup=False,
    )
    t0 = time.perf_counter()
    summary = build(config)
    return time.perf_counter() - t0, summary.num_samples, summary.rejections


def run_img2dataset(exe: str, url_file: Path, out: Path, workers: int, concurrency: int) -> tuple[float, int, str]:
    cmd = [exe, "--url_list", str(url_file), "--input_format", "txt", "--output_folder", str(out),
           "--output_format", "files", "--image_size", "64", "--resize_mode", "center_crop",
           "--processes_count", str(workers), "--thread_count", str(concurrency), "--timeout", "5",
           "--retries", "0", "--enable_wandb", "False", "--number_sample_per_shard", "100000",
           "--disallowed_header_directives", "[]"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    seconds = time.perf_counter() - t0
    ok = 0
    for stats in out.glob("*_stats.json"):
        ok += json.loads(stats.read_text()).get("successes", 0)
    tail = "" if proc.returncode == 0 else (proc.stderr or proc.stdout)[-400:]
    return seconds, ok, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight per worker process")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="server latency per image")
    parser.add_argument("--img2dataset", default="/tmp/i2d-venv/bin/img2dataset")
    args = parser.parse_args()
    have_i2d = Path(args.img2dataset).is_file()
    tmp = Path(tempfile.mkdtemp(prefix="scrape-bench-"))
    try:
        with WebServer(image_delay_s=args.delay_ms / 1000, n_images=args.images) as server:
            urls = tmp / "urls.txt"
            urls.write_text("".join(server.url(f"/bench/{i}.png") + "\n" for i in range(args.images)))
            total = args.workers * args.concurrency
            print(f"{args.images} images, {args.delay_ms:g} ms server latency, concurrency {args.workers} x {args.concurrency} = {total}")
            g_s, g_ok, g_rej = run_gandata(urls, tmp / "g", args.workers, args.concurrency)
            g_rate = g_ok / g_s
            print(f"gandata:     {g_ok}/{args.images} ok in {g_s:.2f}s = {g_rate:.1f} images/s (download+decode+resize+shards) rejections={g_rej}")
            if have_i2d:
                i_s, i_ok, err = run_img2dataset(args.img2dataset, urls, tmp / "i", args.workers, args.concurrency)
                i_rate = i_ok / i_s if i_s else 0.0
                print(f"img2dataset: {i_ok}/{args.images} ok in {i_s:.2f}s = {i_rate:.1f} images/s{' ERROR: ' + err if err else ''}")
                if i_rate:
                    print(f"ratio gandata/img2dataset: {g_rate / i_rate:.2f}x")
            else:
                print(f"img2dataset: not run ({args.img2dataset} not found; install it in a separate venv, see --help)")

            # Correctness: robots.txt-disallowed URLs and an endless oversized body.
            for i in range(5):
                server.images[f"/private/{i}.png"] = server.images[f"/bench/{i}.png"]
            bad = tmp / "bad.txt"
            bad.write_text("".join(server.url(f"/private/{i}.png") + "\n" for i in range(5)) + server.url("/huge.png") + "\n")
            runs = [("gandata", lambda: run_gandata(bad, tmp / "g2", args.workers, args.concurrency))]
            if have_i2d:
                runs.append(("img2dataset", lambda: run_img2dataset(args.img2dataset, bad, tmp / "i2", args.workers, args.concurrency)))
            for name, run in runs:
                before = sum(n for p, n in server.counts.items() if p.startswith("/private/"))
                sent_before = server.huge_bytes_sent
                run()
                private = sum(n for p, n in server.counts.items() if p.startswith("/private/")) - before
                print(f"{name + ':':12} requests to robots-disallowed /private/: {private}; oversized body bytes sent: {(server.huge_bytes_sent - sent_before) / 1e6:.1f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
