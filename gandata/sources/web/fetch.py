"""The polite async client every web source fetches through.

Before any request to a host its robots.txt is fetched (once per host per
client, or handed over from the parent process) and obeyed, ``Crawl-delay``
included. Requests go out with an identifying User-Agent, at most
``concurrency`` at a time in this process and ``host_concurrency`` per host
across all worker processes (lock files in the cache directory), paced by
``host_rate`` / ``Crawl-delay``. Network errors, timeouts, 5xx and 429 are
retried with exponential backoff and jitter, honouring ``Retry-After``; a
failure pauses the whole host, and a host that keeps failing is given up.
Redirects are followed by hand, so every hop passes the same URL, address
and robots checks; loops are detected. A body is read in chunks and the
download aborted as soon as it passes ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from protego import Protego
from yarl import URL

from gandata.sources.web.guard import UrlRefused, check_address, check_url, sniff_image
from gandata.sources.web.options import WebOptions

# RFC 9309: an unreachable robots.txt (5xx, network error) means "disallow all".
DISALLOW_ALL = "User-agent: *\nDisallow: /\n"
ALLOW_ALL = ""


@dataclass
class FetchResult:
    """The outcome of one fetch. ``reason`` is None on success, else a rejection code."""

    url: str
    final_url: str = ""
    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fetched_at: str = ""
    reason: str | None = None
    detail: str = ""
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.reason is None


class _Retry(Exception):
    def __init__(self, detail: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail, self.status, self.retry_after = detail, status, retry_after


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}"


def noai_directives(header_values: list[str], wanted: tuple[str, ...]) -> list[str]:
    """The directives of ``wanted`` present in X-Robots-Tag / meta robots
    values ("noai, noimageai", "gandata: noai", ...)."""
    found = set()
    for value in header_values:
        for token in value.lower().split(","):
            token = token.strip()
            # "botname: directive" applies to that bot; we honour it whatever the name.
            token = token.rsplit(":", 1)[-1].strip()
            if token in wanted:
                found.add(token)
    return sorted(found)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HostLimiter:
    """Per-host concurrency and pacing, shared by every worker process
    through lock files in ``lock_dir`` (in-process only when it is None)."""

    def __init__(self, limit: int, lock_dir: str | None) -> None:
        self.limit = limit
        self.lock_dir = Path(lock_dir) if lock_dir else None
        self._made = False
        self._local: dict[str, asyncio.Semaphore] = {}
        self._next: dict[str, float] = {}

    def _name(self, host: str) -> str:
        # Created on first use, so that a dry run writes nothing.
        if self.lock_dir is not None and not self._made:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            self._made = True
        return re.sub(r"[^a-z0-9.-]", "_", host.lower())

    async def acquire(self, host: str) -> int | None:
        sem = self._local.setdefault(host, asyncio.Semaphore(self.limit))
        await sem.acquire()
        if self.lock_dir is None:
            return None
        delay = 0.001
        try:
            while True:
                for i in range(self.limit):
                    fd = os.open(self.lock_dir / f"{self._name(host)}.slot{i}", os.O_CREAT | os.O_RDWR, 0o600)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return fd
                    except BlockingIOError:
                        os.close(fd)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.02)
        except BaseException:
            sem.release()
            raise

    def release(self, host: str, fd: int | None) -> None:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._local[host].release()

    async def pace(self, host: str, interval_s: float) -> None:
        """Wait for this host's next request slot: requests start at least
        ``interval_s`` apart across all processes."""
        if interval_s <= 0:
            return
        now = time.time()
        if self.lock_dir is None:
            start = max(now, self._next.get(host, 0.0))
            self._next[host] = start + interval_s
        else:
            fd = os.open(self.lock_dir / f"{self._name(host)}.next", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds
                raw = os.read(fd, 64)
                start = max(now, float(raw) if raw.strip() else 0.0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, repr(start + interval_s).encode())
            finally:
                os.close(fd)
        if start > now:
            await asyncio.sleep(start - now)


class Fetcher:
    """One async HTTP client with every politeness and safety rule. Use as
    ``async with Fetcher(...) as f: await f.fetch(url)``."""

    def __init__(
        self, options: WebOptions, *, allow_private_network: bool = False, lock_dir: str | None = None,
        robots_texts: dict[str, str] | None = None, seed: int = 0,
    ) -> None:
        self.options = options
        self.allow_private = allow_private_network
        self.limiter = HostLimiter(options.host_concurrency, lock_dir)
        self.robots_texts: dict[str, str] = dict(robots_texts or {})
        self._robots: dict[str, Protego] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._dns: dict[str, str | None] = {}
        self._global = asyncio.Semaphore(options.concurrency)
        self._pause_until: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._client: aiohttp.ClientSession | None = None
        self.requests = 0

    async def __aenter__(self) -> "Fetcher":
        o = self.options
        # auto_decompress off: the size cap counts the bytes on the wire, and
        # _decode_body undoes gzip/deflate with a cap of its own.
        self._client = aiohttp.ClientSession(
            headers={"User-Agent": o.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=o.connect_timeout_s, sock_read=o.read_timeout_s),
            connector=aiohttp.TCPConnector(limit=o.concurrency + 4),
            auto_decompress=False, trust_env=False,
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._client is not None
        await self._client.close()

    # ---- robots.txt -------------------------------------------------------------

    async def robots(self, origin: str) -> Protego:
        """The parsed robots.txt of ``origin``, fetched at most once."""
        if origin in self._robots:
            return self._robots[origin]
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if origin not in self._robots:
                if origin not in self.robots_texts:
                    self.robots_texts[origin] = await self._fetch_robots(origin)
                self._robots[origin] = Protego.parse(self.robots_texts[origin])
        return self._robots[origin]

    async def _fetch_robots(self, origin: str) -> str:
        url = origin + "/robots.txt"
        for _ in range(5):  # RFC 9309: follow at least five redirects
            try:
                _, host, port = check_url(url)
                await check_address(host, port, self.allow_private, self._dns)
                async with self._global:
                    response = await self._request(url, urlsplit(url).netloc.lower(), image=False)
            except UrlRefused:
                return DISALLOW_ALL
            except _Retry:
                return DISALLOW_ALL
            if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            if response.status is not None and 200 <= response.status < 300:
                return (response.body or b"").decode("utf-8", "replace")
            # 4xx: no robots.txt, everything allowed (RFC 9309 2.3.1.3).
            return ALLOW_ALL if response.status is not None and response.status < 500 else DISALLOW_ALL
        return ALLOW_ALL

    def crawl_delay(self, origin: str) -> float:
        parser = self._robots.get(origin)
        delay = parser.crawl_delay(self.options.user_agent) if parser is not None else None
        return float(delay or 0.0)

    # ---- fetching ---------------------------------------------------------------

    async def fetch(self, url: str, *, image: bool = True) -> FetchResult:
        """Fetch ``url`` following redirects; never raises for a bad URL or
        response: the result carries a rejection reason instead."""
        seen: set[str] = set()
        current = url
        for _ in range(self.options.max_redirects + 1):
            if current in seen:
                return FetchResult(url, current, reason="download_failed", detail=f"{url}: redirect loop at {current}")
            seen.add(current)
            try:
                _, host, port = check_url(current)
                await check_address(host, port, self.allow_private, self._dns)
                origin = origin_of(current)
                if self.options.robots:
                    parser = await self.robots(origin)
                    if not parser.can_fetch(current, self.options.user_agent):
                        return FetchResult(url, current, reason="robots_disallowed", detail=f"{current}: disallowed by {origin}/robots.txt")
            except UrlRefused as exc:
                detail = exc.detail if exc.detail.startswith(current) else f"{current}: {exc.detail}"
                return FetchResult(url, current, reason=exc.reason, detail=detail, retryable=exc.reason == "download_failed")
            result = await self._fetch_with_retries(url, current, urlsplit(current).netloc.lower(), origin, image)
            location = result.headers.get("location")
            if result.ok and result.status in (301, 302, 303, 307, 308) and location:
                current = urljoin(current, location)
                continue
            return result
        return FetchResult(url, current, reason="download_failed", detail=f"{url}: more than {self.options.max_redirects} redirects")

    async def _fetch_with_retries(self, url: str, current: str, host: str, origin: str, image: bool) -> FetchResult:
        o = self.options
        last = ""
        for attempt in range(o.retries + 1):
            pause = self._pause_until.get(host, 0.0) - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            try:
                # Host slot first: a request waiting for a busy host must not
                # hold one of the global slots that other hosts could use.
                fd = await self.limiter.acquire(host)
                try:
                    # Checked once a slot is ours: requests queued behind the
                    # failing ones must not go out either.
                    if self._failures.get(host, 0) >= o.host_max_failures > 0:
                        return FetchResult(url, current, reason="download_failed", retryable=True,
                                           detail=f"{current}: host {host} given up after {self._failures[host]} consecutive failures ({last or 'see other rejections'})")
                    await self.limiter.pace(host, max(1.0 / o.host_rate if o.host_rate else 0.0, self.crawl_delay(origin)))
                    async with self._global:
                        result = await self._request(current, host, image=image)
                finally:
                    self.limiter.release(host, fd)
                self._failures[host] = 0
                result.url = url
                return result
            except _Retry as exc:
                last = exc.detail
                self._failures[host] = self._failures.get(host, 0) + 1
                if attempt == o.retries:
                    break
                delay = min(o.max_backoff_s, o.backoff_s * (2 ** attempt)) * (0.5 + self._rng.random())
                if exc.retry_after is not None:
                    if exc.retry_after > o.max_backoff_s:
                        return FetchResult(url, current, status=exc.status, reason="download_failed", retryable=True,
                                           detail=f"{current}: {exc.detail}; Retry-After {exc.retry_after:.0f}s exceeds max_backoff_s={o.max_backoff_s:g}")
                    delay = max(delay, exc.retry_after)
                # The whole host waits, not only this URL: a failing host is backed off.
                self._pause_until[host] = max(self._pause_until.get(host, 0.0), time.monotonic() + delay)
                await asyncio.sleep(delay)
        return FetchResult(url, current, reason="download_failed", retryable=True,
                           detail=f"{current}: {last} (after {o.retries + 1} attempts)")

    async def _request(self, url: str, host: str, *, image: bool) -> FetchResult:
        """One GET; raises _Retry for retryable failures."""
        assert self._client is not None
        o = self.options
        self.requests += 1
        fetched_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # The read timeout is per chunk; a body trickled slowly is cut off by this total.
        deadline = o.connect_timeout_s + 2 * o.read_timeout_s
        try:
            return await asyncio.wait_for(self._get(url, image, fetched_at), timeout=deadline)
        except aiohttp.InvalidURL as exc:
            return FetchResult(url, url, reason="bad_url", detail=f"{url}: invalid URL ({exc})", fetched_at=fetched_at)
        except asyncio.TimeoutError as exc:  # aiohttp's read/connect timeouts are TimeoutErrors too
            raise _Retry(f"timeout ({type(exc).__name__}{': ' + str(exc) if str(exc) else f' after {deadline:g}s'})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _Retry(f"network error ({type(exc).__name__}: {exc})") from None

    async def _get(self, url: str, image: bool, fetched_at: str) -> FetchResult:
        assert self._client is not None
        o = self.options
        async with self._client.get(URL(url, encoded=True), allow_redirects=False) as response:
            status = response.status
            headers = {k.lower(): v for k, v in response.headers.items()}
            base = dict(url=url, final_url=url, status=status, headers=headers, fetched_at=fetched_at,
                        content_type=headers.get("content-type"))
            if status in (429, 408) or status >= 500:
                raise _Retry(f"HTTP {status}", status, parse_retry_after(headers.get("retry-after")))
            if 300 <= status < 400:
                if "location" in headers:
                    return FetchResult(**base)
                return FetchResult(**base, reason="download_failed", detail=f"{url}: HTTP {status} without Location")
            if status >= 400 or status < 200:
                return FetchResult(**base, reason="download_failed", detail=f"{url}: HTTP {status}")
            if image:
                tags = noai_directives(response.headers.getall("x-robots-tag", []), o.noai)
                if tags:
                    return FetchResult(**base, reason="noai", detail=f"{url}: X-Robots-Tag {', '.join(tags)}")
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > o.max_bytes:
                return FetchResult(**base, reason="too_large", detail=f"{url}: Content-Length {declared} > max_bytes={o.max_bytes}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > o.max_bytes:  # abort now: closing drops the connection, the rest is never read
                    response.close()
                    return FetchResult(**base, reason="too_large", detail=f"{url}: body passed max_bytes={o.max_bytes} (aborted)")
                chunks.append(chunk)
            body = b"".join(chunks)
            if "content-encoding" in headers and headers["content-encoding"].strip().lower() not in ("", "identity"):
                body = _decode_body(body, headers["content-encoding"], o.max_bytes)
                if body is None:
                    return FetchResult(**base, reason="too_large", detail=f"{url}: decoded body passed max_bytes={o.max_bytes}")
            if image:
                problem = sniff_image(body, headers.get("content-type"))
                if problem:
                    return FetchResult(**base, reason="not_image", detail=f"{url}: {problem}")
            return FetchResult(**base, body=body)


def _decode_body(body: bytes, encoding: str, max_bytes: int) -> bytes | None:
    """Undo gzip/deflate with a cap (a compressed body may be a bomb)."""
    import zlib

    data = body
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip", "deflate"):
            d = zlib.decompressobj(47 if coding != "deflate" else zlib.MAX_WBITS)
            try:
                data = d.decompress(data, max_bytes + 1)
            except zlib.error:
                try:
                    data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, max_bytes + 1)
                except zlib.error:
                    return data
            if len(data) > max_bytes:
                return None
        elif coding != "identity":
            return data  # unknown coding (br, zstd): leave as is; the sniffer decides
    return data
