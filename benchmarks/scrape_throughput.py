"""Scrape throughput: gandata's urls: source vs img2dataset on the same URL list.

Two servers, both local (tests/common/web_server.py), both tools run as whole
commands (a fresh Python process each, interpreter start included):

- latency mode: a threaded HTTP/1.1 keep-alive server with a per-image delay
  standing in for network latency (``--delay-ms``); both tools at equal
  concurrency (WORKERS processes x CONCURRENCY requests each);
- fragile mode: the kind of server much of the web runs on (FragileServer: a
  threaded ``http.server`` speaking HTTP/1.0, accept backlog 5, Nagle on with
  headers and body written separately, no latency added). img2dataset at
  2 x 32 threads; gandata at the same budget (2 workers x 32,
  host_concurrency 64), with default politeness (host_concurrency 4), and a
  sweep of 1 or 2 workers x concurrency 4..128 counting lost images (every
  rejection is a loss here: the images are all valid and cleaning is off).

``--mode stall`` shows where a small server's ~44 ms per request go: a
keep-alive server with Nagle on answers 200 requests one at a time, to a plain
aiohttp session and to gandata's client (which ACKs every read at once).

gandata decodes, resizes to 64 px and writes shards; img2dataset center-crops
to 64 px and writes files. A last, small run compares correctness: requests
the server saw to a robots.txt-disallowed path, and the bytes it had to send
for an endless oversized body.

img2dataset is taken from a separate environment (never the project's):

    python -m venv /tmp/i2d-venv && /tmp/i2d-venv/bin/pip install img2dataset
    python benchmarks/scrape_throughput.py [--mode both|latency|fragile|stall] [--images 400] \\
        [--fragile-images 1295] [--no-sweep] [--workers 2] [--concurrency 16] [--img2dataset /tmp/i2d-venv/bin/img2dataset]

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

from tests.common.web_server import FragileServer, WebServer  # noqa: E402

# The child that runs one gandata build and prints its figures as JSON.
_CHILD = r"""
import json, sys
from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.pipeline import build
try:
    from gandata.sources.web.hosts import read_host_figures
except ImportError:  # a gandata from before per-host figures (comparisons)
    read_host_figures = lambda path: []
url_file, out, workers, params = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
config = BuildConfig(
    sources=(SourceSpec(f"urls:{url_file}", params=params),), output=out,
    image=ImageConfig(size_px=64, min_size_px=8), workers=workers, allow_private_network=True, dedup=False,
    clean=CleanConfig(enabled=False),
)
summary = build(config)
hosts = [f.describe() for f in read_host_figures(out + "/.cache/web/hosts")]
print(json.dumps({"ok": summary.num_samples, "rejections": summary.rejections, "hosts": hosts}))
"""


def run_gandata(url_file: Path, out: Path, workers: int, params: dict[str, str]) -> tuple[float, int, dict[str, int], list[str]]:
    """One whole gandata build in a fresh process: (seconds, images kept, rejections, host figures)."""
    cmd = [sys.executable, "-c", _CHILD, str(url_file), str(out), str(workers), json.dumps(params)]
    t0 = time.perf_counter()
    # cwd too: `python -c` puts the working directory first on sys.path.
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"gandata build failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return seconds, result["ok"], result["rejections"], result["hosts"]


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


def _row(name: str, seconds: float, ok: int, total: int, extra: str = "") -> float:
    rate = ok / seconds if seconds else 0.0
    print(f"  {name:<44} {ok:>5}/{total} ok  lost {total - ok:>4}  {seconds:7.2f}s  {rate:7.1f} images/s  {extra}")
    return rate


def latency_mode(args: argparse.Namespace, tmp: Path, have_i2d: bool) -> None:
    with WebServer(image_delay_s=args.delay_ms / 1000, n_images=args.images) as server:
        urls = tmp / "latency-urls.txt"
        urls.write_text("".join(server.url(f"/bench/{i}.png") + "\n" for i in range(args.images)))
        total = args.workers * args.concurrency
        print(f"\nlatency mode: {args.images} images, {args.delay_ms:g} ms server latency, HTTP/1.1 keep-alive, "
              f"concurrency {args.workers} x {args.concurrency} = {total}")
        params = {"concurrency": str(args.concurrency), "host_concurrency": str(total), "batch": "32",
                  "max_bytes": "2000000", "read_timeout_s": "5"}
        g_s, g_ok, g_rej, hosts = run_gandata(urls, tmp / "lat-g", args.workers, params)
        g_rate = _row("gandata", g_s, g_ok, args.images, f"rejections={g_rej}")
        print(f"    {hosts[0] if hosts else ''}")
        if have_i2d:
            i_s, i_ok, err = run_img2dataset(args.img2dataset, urls, tmp / "lat-i", args.workers, args.concurrency)
            i_rate = _row("img2dataset", i_s, i_ok, args.images, "ERROR: " + err if err else "")
            if i_rate:
                print(f"  ratio gandata/img2dataset (images/s): {g_rate / i_rate:.2f}x")
        else:
            print(f"  img2dataset: not run ({args.img2dataset} not found; install it in a separate venv, see --help)")
        correctness(args, tmp, server, have_i2d)


def fragile_mode(args: argparse.Namespace, tmp: Path, have_i2d: bool) -> None:
    n = args.fragile_images
    with FragileServer(n) as server:
        urls = tmp / "fragile-urls.txt"
        urls.write_text("".join(u + "\n" for u in server.image_urls()))
        print(f"\nfragile mode: {n} images, threaded http.server, HTTP/1.0, accept backlog 5, no latency added")
        i_rate = 0.0
        if have_i2d:
            i_s, i_ok, err = run_img2dataset(args.img2dataset, urls, tmp / "frag-i", 2, 32)
            i_rate = _row("img2dataset 2 procs x 32 threads", i_s, i_ok, n, "ERROR: " + err if err else "")
        runs: list[tuple[str, int, dict[str, str]]] = [
            ("gandata 2 workers x 32, host_concurrency 64", 2, {"concurrency": "32", "host_concurrency": "64"}),
            ("gandata 2 workers, default politeness", 2, {}),
        ]
        for workers in (1, 2) if args.sweep else ():
            for conc in (4, 16, 64, 128):
                runs.append((f"gandata {workers} worker(s) x {conc}, host_conc {workers * conc}", workers,
                             {"concurrency": str(conc), "host_concurrency": str(workers * conc)}))
        rates: dict[str, float] = {}
        lost: dict[str, int] = {}
        for i, (name, workers, params) in enumerate(runs):
            g_s, g_ok, g_rej, hosts = run_gandata(urls, tmp / f"frag-g{i}", workers, params)
            rates[name] = _row(name, g_s, g_ok, n, f"rejections={g_rej}" if g_rej else "")
            lost[name] = n - g_ok
            print(f"    {hosts[0] if hosts else ''}")
        best = max(rates.values())
        one64 = rates.get("gandata 1 worker(s) x 64, host_conc 64")
        print(f"  lost, all gandata runs: {sum(lost.values())}"
              + (f"; 1 worker x 64 at {one64 / best:.2f} of the best gandata run's images/s" if one64 else ""))
        if i_rate:
            print(f"  ratio gandata/img2dataset at equal budget (2 x 32): {rates[runs[0][0]] / i_rate:.2f}x; "
                  f"default politeness: {rates[runs[1][0]] / i_rate:.2f}x")


def stall_mode(args: argparse.Namespace) -> None:
    """Where a small server's 44 ms per request goes: a keep-alive server with
    Nagle on, headers and body written separately, asked 200 times one at a
    time by a plain aiohttp session and by gandata's client (TCP_QUICKACK)."""
    import asyncio
    import statistics

    import aiohttp

    from gandata.sources.web.fetch import Fetcher
    from gandata.sources.web.options import WebOptions

    async def plain(urls: list[str]) -> list[float]:
        out = []
        async with aiohttp.ClientSession() as session:
            for url in urls:
                t0 = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                out.append(time.perf_counter() - t0)
        return out

    async def ours(urls: list[str]) -> list[float]:
        out = []
        async with Fetcher(WebOptions(robots=False, host_concurrency=1), allow_private_network=True) as fetcher:
            for url in urls:
                t0 = time.perf_counter()
                result = await fetcher.fetch(url)
                assert result.ok, result.detail
                out.append(time.perf_counter() - t0)
        return out

    print("\nstall probe: 200 requests one at a time, HTTP/1.1 keep-alive server with Nagle on")
    with WebServer(n_images=200, nagle=True) as server:
        urls = [server.url(f"/bench/{i}.png") for i in range(200)]
        for name, probe in (("plain aiohttp", plain), ("gandata client (TCP_QUICKACK)", ours)):
            seconds = asyncio.run(probe(urls))
            print(f"  {name:<32} p50 {statistics.median(seconds) * 1000:6.1f} ms   "
                  f"p99 {sorted(seconds)[int(len(seconds) * 0.99)] * 1000:6.1f} ms")


def correctness(args: argparse.Namespace, tmp: Path, server: WebServer, have_i2d: bool) -> None:
    """robots.txt-disallowed URLs and an endless oversized body."""
    for i in range(5):
        server.images[f"/private/{i}.png"] = server.images[f"/bench/{i}.png"]
    bad = tmp / "bad.txt"
    bad.write_text("".join(server.url(f"/private/{i}.png") + "\n" for i in range(5)) + server.url("/huge.png") + "\n")
    params = {"concurrency": str(args.concurrency), "max_bytes": "2000000", "retries": "0", "read_timeout_s": "5"}
    runs = [("gandata", lambda: run_gandata(bad, tmp / "g2", args.workers, params))]
    if have_i2d:
        runs.append(("img2dataset", lambda: run_img2dataset(args.img2dataset, bad, tmp / "i2", args.workers, args.concurrency)))
    for name, run in runs:
        before = sum(n for p, n in server.counts.items() if p.startswith("/private/"))
        sent_before = server.huge_bytes_sent
        run()
        private = sum(n for p, n in server.counts.items() if p.startswith("/private/")) - before
        print(f"  {name + ':':12} requests to robots-disallowed /private/: {private}; "
              f"oversized body bytes sent: {(server.huge_bytes_sent - sent_before) / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("both", "latency", "fragile", "stall"), default="both",
                        help="both = latency + fragile; stall: where 44 ms per request go")
    parser.add_argument("--images", type=int, default=400, help="latency mode")
    parser.add_argument("--fragile-images", type=int, default=1295)
    parser.add_argument("--workers", type=int, default=2, help="latency mode")
    parser.add_argument("--concurrency", type=int, default=16, help="latency mode: requests in flight per worker process")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="latency mode: server latency per image")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false",
                        help="fragile mode: skip the 1-2 workers x concurrency 4-128 loss sweep")
    parser.add_argument("--img2dataset", default="/tmp/i2d-venv/bin/img2dataset")
    args = parser.parse_args()
    have_i2d = Path(args.img2dataset).is_file()
    tmp = Path(tempfile.mkdtemp(prefix="scrape-bench-"))
    try:
        print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        if args.mode in ("both", "latency"):
            latency_mode(args, tmp, have_i2d)
        if args.mode in ("both", "fragile"):
            fragile_mode(args, tmp, have_i2d)
        if args.mode == "stall":
            stall_mode(args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
