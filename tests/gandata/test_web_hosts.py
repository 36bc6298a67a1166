"""Per-host congestion control (gandata/sources/web/hosts.py) against real
servers on 127.0.0.1 that break the way small servers do
(tests/common/web_server.py: FragileServer). No mocks, no timed assertions:
what is checked is what the server saw and what the build kept."""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.pipeline import build
from gandata.sources.base import SourceContext
from gandata.sources.web.fetch import (
    BUSY,
    ERROR,
    OVERLOAD,
    REFUSED,
    _connector,
    _QuickAckHandler,
    classify,
)
from gandata.sources.web.hosts import INITIAL_WINDOW, HostController, read_host_figures
from gandata.sources.web.source import open_urls
from tests.common.web_server import FragileServer

IMAGE = ImageConfig(size_px=16, min_size_px=8)


def _build(tmp_path: Path, urls: list[str], params: dict[str, str], **kw):
    (tmp_path / "urls.txt").write_text("".join(u + "\n" for u in urls))
    kw.setdefault("executor", "serial")
    config = BuildConfig(
        sources=(SourceSpec(f"urls:{tmp_path / 'urls.txt'}", params=params),), output=str(tmp_path / "out"),
        image=IMAGE, allow_private_network=True, dedup=False, clean=CleanConfig(enabled=False), **kw,
    )
    return build(config), tmp_path / "out"


def _figures(out: Path):
    (figures,) = read_host_figures(out / ".cache" / "web" / "hosts")
    return figures


def _rejected(out: Path) -> list[dict]:
    with open(out / "rejected.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# ---- the controller on its own ------------------------------------------------------------


def test_window_grows_is_cut_once_per_burst_and_keeps_to_the_ceiling() -> None:
    async def run() -> None:
        hosts = HostController(8, None)
        first = await hosts.acquire("h")
        second = await hosts.acquire("h")
        assert (first.slot, second.slot) == (0, 1)  # the window starts at INITIAL_WINDOW = 2
        third = asyncio.ensure_future(hosts.acquire("h"))
        await asyncio.sleep(0.01)
        assert not third.done()  # a third waits for a slot
        hosts.release(first)
        hosts.succeeded(first, 0.01)  # slow start: +1
        third_ticket = await third
        assert third_ticket.slot is not None
        assert hosts.figures("h").window == INITIAL_WINDOW + 1
        # Two failures of the same burst: only the first cuts (and is charged).
        for ticket in (second, third_ticket):
            hosts.release(ticket)
        assert hosts.overloaded(second, None, "reset") is True
        assert hosts.overloaded(third_ticket, None, "reset") is False
        figures = hosts.figures("h")
        assert figures.window == 1.5 and figures.cuts == 1
        for _ in range(100):
            ticket = await hosts.acquire("h")
            hosts.release(ticket)
            hosts.succeeded(ticket, 0.01)
        assert hosts.figures("h").window == 8  # additive increase up to the ceiling, never past it
        hosts.close()

    asyncio.run(run())


def test_a_slow_answer_stops_growth_and_a_spike_cuts() -> None:
    async def run() -> None:
        hosts = HostController(64, None)

        async def answer(latency: float) -> float:
            ticket = await hosts.acquire("h")
            hosts.release(ticket)
            hosts.succeeded(ticket, latency)
            return hosts.figures("h").window

        assert await answer(0.01) == INITIAL_WINDOW + 1
        assert await answer(0.05) == INITIAL_WINDOW + 2  # slow, but below HOLD_FLOOR: still grows
        assert await answer(0.01) == 5  # fast: slow start goes on
        assert await answer(0.05) == 5  # five times the fastest answer: held
        assert await answer(0.01) == 5 + 1 / 5  # and slow start is over: +1/window
        assert await answer(1.2) == (5 + 1 / 5) / 2  # a SYN retransmit's second: cut
        hosts.close()

    asyncio.run(run())


def test_failures_are_told_apart_by_cause() -> None:
    assert classify(aiohttp.ConnectionTimeoutError()) == BUSY  # never reached the server
    assert classify(aiohttp.ServerDisconnectedError()) == BUSY  # dropped without an answer
    assert classify(ConnectionResetError(errno.ECONNRESET, "reset")) == BUSY
    assert classify(aiohttp.SocketTimeoutError()) == OVERLOAD  # the server took too long to answer
    refused = aiohttp.ClientConnectorError(None, ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert classify(refused) == REFUSED  # dead host or full accept queue: decided by what is in flight
    assert classify(aiohttp.ClientResponseError(None, (), status=400)) == ERROR
    assert classify(aiohttp.ClientPayloadError("truncated")) == OVERLOAD


def test_reads_acknowledge_at_once() -> None:
    # The protocol that sends TCP_QUICKACK after each read is the one in use.
    async def run() -> None:
        connector = _connector(4)
        assert isinstance(connector._factory(), _QuickAckHandler)
        await connector.close()

    if not hasattr(socket, "TCP_QUICKACK"):
        pytest.skip("TCP_QUICKACK is Linux-only")
    asyncio.run(run())


# ---- against fragile servers --------------------------------------------------------------


def test_server_dropping_connections_above_n_loses_nothing_and_converges_near_n(tmp_path: Path) -> None:
    limit = 3
    # 20 ms an image, so that requests overlap and the limit bites.
    with FragileServer(120, image_px=16, max_in_flight=limit, delay_s=0.02) as server:
        summary, out = _build(tmp_path, server.image_urls(), {"host_concurrency": "32", "concurrency": "32"})
        assert summary.num_samples == 120 and summary.rejections == {}
        assert server.statuses["reset"] >= 1  # the server was pushed past its limit ...
        figures = _figures(out)
    assert figures.downloaded == 120 and figures.failed == 0  # ... and nothing was lost
    # Every reset is retried; on a loaded machine a connect can also time out
    # (the short first-connect timeout) and be retried without a reset.
    assert figures.cuts >= 1 and figures.retries >= server.statuses["reset"]
    # The ceiling was 32; the window settles around what the server takes.
    assert 1 <= figures.window <= 2 * limit + 1
    assert figures.max_window < 32
    # Every request was an image, a retry of one, or one of the site's opt-out
    # files (/.well-known/tdmrep.json and /ai.txt, read once per host).
    assert figures.requests == 120 + figures.retries + 2


def test_server_answering_429_with_retry_after_is_slowed_and_nothing_lost(tmp_path: Path) -> None:
    with FragileServer(40, image_px=16, max_in_flight=2, busy_status=429, retry_after="1", delay_s=0.02) as server:
        summary, out = _build(tmp_path, server.image_urls(), {"host_concurrency": "16", "retries": "0"})
        assert summary.num_samples == 40 and summary.rejections == {}  # 429 + Retry-After: never charged
        refused = [t for status, t in server.answers if status == "429"]
        arrivals = list(server.arrivals)
    figures = _figures(out)
    assert refused and figures.cuts >= 1
    assert figures.max_window < 16
    # Retry-After: 1 honoured: after a 429 the host hears nothing new for a
    # second (0.3 s of grace for requests already on their way on a busy machine).
    for t in refused:
        assert not [u for u in arrivals if t + 0.3 < u < t + 0.9], t


def test_dead_host_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    urls = [f"http://127.0.0.1:{port}/{i}.png" for i in range(40)]
    # No robots.txt nor opt-out files: only the images knock on the dead port.
    summary, out = _build(tmp_path, urls, {"robots": "false", "optouts": "", "host_concurrency": "8"}, allow_empty=True)
    assert summary.rejections == {"download_failed": 40}
    figures = _figures(out)
    # Refused with nothing in flight: given up at once, no retries, the other
    # URLs never requested.
    assert figures.requests <= INITIAL_WINDOW and figures.retries == 0
    assert figures.given_up and figures.failed == 40 and figures.downloaded == 0
    details = [r["detail"] for r in _rejected(out)]
    assert any("looks dead" in d for d in details)
    assert all("given up" in d or "looks dead" in d for d in details)
    assert all(f"host 127.0.0.1:{port}:" in d and "requests" in d and "median latency" in d for d in details)


def test_host_ceiling_holds_across_worker_processes(tmp_path: Path) -> None:
    with FragileServer(96, image_px=16, backlog=64) as server:
        summary, out = _build(tmp_path, server.image_urls(), {"host_concurrency": "3", "concurrency": "16", "batch": "16"},
                              executor="process", workers=2)
        assert summary.num_samples == 96
        assert server.max_in_flight <= 3
        # The figures are the source's too (for a build summary or a progress display).
        source = open_urls(f"urls:{tmp_path / 'urls.txt'}", SourceSpec("x"),
                           SourceContext(allow_private_network=True, cache_dir=str(tmp_path / "other")))
        assert source.host_figures() == []  # before partitions(): its hosts are not known yet
        source.partitions()
        (fresh,) = source.host_figures()
        # Planning reads only the site's opt-out files (tdmrep.json, ai.txt), no image.
        assert fresh.host == f"127.0.0.1:{server.port}" and fresh.downloaded == 0 and fresh.requests <= 2
    figures = _figures(out)
    assert figures.downloaded == 96 and figures.window <= 3


def test_crawl_delay_holds_across_worker_processes(tmp_path: Path) -> None:
    with FragileServer(6, image_px=16, crawl_delay_s=0.2) as server:
        summary, _ = _build(tmp_path, server.image_urls(), {"host_concurrency": "8", "batch": "2"},
                            executor="process", workers=2)
        assert summary.num_samples == 6
        arrivals = sorted(server.arrivals)
    # robots.txt's Crawl-delay: 0.2 paces requests from both workers (a little
    # slack for one connect taking longer than the next).
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(arrivals)), arrivals


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("concurrency", [4, 16, 64, 128])
def test_fragile_server_loses_nothing_at_any_concurrency(tmp_path: Path, workers: int, concurrency: int) -> None:
    with FragileServer(400, image_px=32) as server:
        params = {"concurrency": str(concurrency), "host_concurrency": str(concurrency * workers)}
        summary, out = _build(tmp_path, server.image_urls(), params, executor="process", workers=workers)
        assert summary.num_samples == 400 and summary.rejections == {}
    assert _figures(out).failed == 0
