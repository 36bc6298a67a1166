"""The polite async client every web source fetches through.

Before any request to a host its robots.txt is fetched (once per host per
client, or handed over from the parent process) and obeyed, ``Crawl-delay``
included. Requests go out with an identifying User-Agent, at most
``concurrency`` at a time in this process and, per host across all worker
processes, at most its congestion window (``hosts.HostController``: grows
while the host answers well, halved on overload, ``host_concurrency`` as the
ceiling), paced by ``host_rate`` / ``Crawl-delay``. Failures are handled by
cause: overload (timeouts, resets, 429, 503) slows the host down and the URL
is retried after the pause, honouring ``Retry-After``; other errors are
retried ``retries`` times with backoff; a dead host (DNS failure, refused
with nothing in flight) fails fast, and a host that keeps failing is given
up after ``host_max_failures`` failures or ``host_retry_budget_s`` seconds.
Redirects are followed by hand, so every hop passes the same URL, address
and robots checks; loops are detected. A body is read in chunks and the
download aborted as soon as it passes ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.client_proto import ResponseHandler
from protego import Protego
from yarl import URL

from gandata.sources.web.guard import (
    UrlRefused,
    check_address,
    check_url,
    join_url,
    shown,
    sniff_image,
)
from gandata.sources.web.hosts import HostController
from gandata.sources.web.options import WebOptions

# RFC 9309: an unreachable robots.txt (5xx, network error) means "disallow all".
DISALLOW_ALL = "User-agent: *\nDisallow: /\n"
ALLOW_ALL = ""
# RFC 9309 asks crawlers to parse at least 500 KiB of a robots.txt; Google
# reads that much and ignores the rest. So do we: a larger file is cut at its
# last full line within the cap (never refused, never read to the end).
ROBOTS_MAX_BYTES = 500 * 1024
# The first line of a DISALLOW_ALL text that says why (a comment to parsers).
_NOTE = "# gandata: "


def unreachable_robots(why: str) -> str:
    """DISALLOW_ALL with a comment saying why; the comment travels with the
    text to the worker processes, for the rejection details."""
    return f"{_NOTE}robots.txt unreachable ({' '.join(why.split())}); RFC 9309: disallow all\n{DISALLOW_ALL}"


def robots_note(text: str) -> str:
    """``" (why)"`` when ``text`` is an unreachable robots.txt's stand-in, else ``""``."""
    if not text.startswith(_NOTE):
        return ""
    return f" ({text[len(_NOTE):].partition(chr(10))[0]})"


@functools.lru_cache(maxsize=32)
def parse_robots(text: str) -> Protego:
    """The parsed robots.txt ``text``. Memoized per process: every partition
    of a build (and the parent's checks) use one parse per host, however many
    partitions a worker runs (a 500 KiB file takes ~0.5 s to parse). The
    parser is only read after parsing, so sharing it is safe."""
    return Protego.parse(text)


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
    # Seconds from sending the request to the response headers (0 when none came).
    ttfb_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason is None


# Failure causes, which decide what a failed attempt does (see _fetch_with_retries).
BUSY = "busy"  # connect timeout, reset, dropped before answering, 429/503 with Retry-After: retried free
OVERLOAD = "overload"  # read timeout, body cut off, 429/503 without Retry-After: charged when it cut
REFUSED = "refused"  # connection refused: overload if the host is alive, else a dead host
DEAD = "dead"  # DNS failure, unreachable: the host fails fast
ERROR = "error"  # 500, 502, a protocol error: retried `retries` times with backoff

# Attempts one URL may spend on failures not charged to it (BUSY ones, and
# overload while the host had already been slowed down): a bound so that no
# URL is requeued forever; the host's time budget usually ends it first.
MAX_FREE_ATTEMPTS = 30
# A first connect gives up after max(FAST_CONNECT_MIN_S, FAST_CONNECT_FACTOR x
# the host's fastest time to first byte): a SYN dropped by a full accept
# queue is otherwise retransmitted by the kernel only after 1 s (then 3, 7 s),
# while a new connection, once the window is cut, gets through at once. Each
# connect timeout of a URL multiplies its next one by 4, up to connect_timeout_s.
FAST_CONNECT_MIN_S = 0.1
FAST_CONNECT_FACTOR = 4.0


class _Retry(Exception):
    def __init__(self, detail: str, status: int | None = None, retry_after: float | None = None,
                 cause: str = ERROR, connect_timeout: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.status, self.retry_after, self.cause = detail, status, retry_after, cause
        self.connect_timeout = connect_timeout


class _QuickAckHandler(ResponseHandler):
    """aiohttp's response protocol, acknowledging every read at once.

    Many small servers write the headers and the body of a response
    separately with Nagle's algorithm on: the body then waits until the
    client acknowledges the headers, and Linux delays that ACK by ~40 ms on a
    reused connection. TCP_QUICKACK after each read sends the pending ACK now
    (measured against such a server: 44 ms per request -> under 1 ms)."""

    _sock: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._sock = transport.get_extra_info("socket")

    def data_received(self, data: bytes) -> None:
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                self._sock = None  # not TCP (or closed): stop trying
        super().data_received(data)


def _connector(limit: int) -> aiohttp.TCPConnector:
    connector = aiohttp.TCPConnector(limit=limit)
    # _factory is how aiohttp makes the protocol of each connection; where
    # it or TCP_QUICKACK (Linux only) is missing, stay with aiohttp's own.
    if hasattr(socket, "TCP_QUICKACK") and hasattr(connector, "_factory"):
        connector._factory = functools.partial(_QuickAckHandler, loop=asyncio.get_running_loop())
    return connector


def classify(exc: BaseException) -> str:
    """The cause of a failed attempt (BUSY, OVERLOAD, REFUSED, DEAD or ERROR)."""
    if isinstance(exc, getattr(aiohttp, "ConnectionTimeoutError", ())):
        return BUSY  # no connection yet: the request never reached the server
    if isinstance(exc, asyncio.TimeoutError):
        return OVERLOAD
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", None)
    if dns_error is not None and isinstance(exc, dns_error):
        return DEAD
    if isinstance(exc, aiohttp.ClientSSLError):
        return ERROR  # a certificate or TLS problem does not go away by waiting
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno if exc.os_error is not None else None
        if code == errno.ECONNREFUSED:
            return REFUSED
        if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            return DEAD
        return BUSY  # reset or aborted while connecting: an accept queue overflowing
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return BUSY  # dropped before the answer
    if isinstance(exc, aiohttp.ClientPayloadError):
        # Cut off mid-body (load), or a body the server always garbles: charged
        # when it cuts, so that such a URL is not asked 30 times.
        return OVERLOAD
    if isinstance(exc, (aiohttp.ClientOSError, OSError)):
        code = getattr(exc, "errno", None)
        if code in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, None):
            return BUSY
    return ERROR


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower case, without any
    ``user:password@`` (never sent to robots.txt, never shown in figures);
    never raises (a URL too malformed to split has the origin ``""``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return f"{parts.scheme.lower()}://{(parts.netloc or '').rpartition('@')[2].lower()}"


def host_of(url: str) -> str:
    """``host[:port]`` of ``url``: the key of its per-host state and figures."""
    return origin_of(url).partition("://")[2]


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


class Fetcher:
    """One async HTTP client with every politeness and safety rule. Use as
    ``async with Fetcher(...) as f: await f.fetch(url)``."""

    def __init__(
        self, options: WebOptions, *, allow_private_network: bool = False, lock_dir: str | None = None,
        robots_texts: dict[str, str] | None = None, seed: int = 0,
    ) -> None:
        self.options = options
        self.allow_private = allow_private_network
        self.hosts = HostController(
            options.host_concurrency, lock_dir, backoff_s=options.backoff_s, max_backoff_s=options.max_backoff_s,
            budget_s=options.host_retry_budget_s, max_failures=options.host_max_failures, adaptive=options.adaptive,
            seed=seed)
        self.robots_texts: dict[str, str] = dict(robots_texts or {})
        self._robots: dict[str, Protego] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._dns: dict[str, str | None] = {}
        self._global = asyncio.Semaphore(options.concurrency)
        self._client: aiohttp.ClientSession | None = None
        self.requests = 0

    async def __aenter__(self) -> "Fetcher":
        o = self.options
        # auto_decompress off: the size cap counts the bytes on the wire, and
        # _decode_body undoes gzip/deflate with a cap of its own.
        self._client = aiohttp.ClientSession(
            headers={"User-Agent": o.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=o.connect_timeout_s, sock_read=o.read_timeout_s),
            connector=_connector(o.concurrency + 4),
            auto_decompress=False, trust_env=False,
        )
        # aiohttp resends a GET at once when the server drops the connection:
        # into the same overload, unseen by the host's window and figures. The
        # controller retries instead, after slowing down. (Private attribute,
        # the one aiohttp's own test client turns off; absent, nothing changes.)
        if hasattr(self._client, "_retry_connection"):
            self._client._retry_connection = False
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._client is not None
        await self._client.close()
        self.hosts.close()

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
                self._robots[origin] = parse_robots(self.robots_texts[origin])
        return self._robots[origin]

    async def _fetch_robots(self, origin: str) -> str:
        """The robots.txt text of ``origin`` as it applies: at most
        ROBOTS_MAX_BYTES of it; DISALLOW_ALL (with a comment saying why)
        when it cannot be reached, ALLOW_ALL when there is none."""
        url = origin + "/robots.txt"
        for _ in range(5):  # RFC 9309: follow at least five redirects
            try:
                _, host, port = check_url(url)
                await check_address(host, port, self.allow_private, self._dns)
                async with self._global:
                    response = await self._request(url, host_of(url), image=False,
                                                   max_bytes=ROBOTS_MAX_BYTES)
            except UrlRefused as exc:
                # Unreachable: RFC 9309 says assume complete disallow.
                where = "" if url == origin + "/robots.txt" else "redirected to an unusable URL: "
                return unreachable_robots(f"{where}{exc.detail}")
            except (_Retry, ValueError) as exc:
                return unreachable_robots(f"{url}: {exc}")
            if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                url = join_url(url, response.headers["location"])
                continue
            if response.status is not None and 200 <= response.status < 300:
                return (response.body or b"").decode("utf-8", "replace")
            # 4xx: no robots.txt, everything allowed (RFC 9309 2.3.1.3).
            if response.status is not None and response.status < 500:
                return ALLOW_ALL
            return unreachable_robots(f"{url}: {response.detail or f'HTTP {response.status}'}")
        return ALLOW_ALL

    def crawl_delay(self, origin: str) -> float:
        parser = self._robots.get(origin)
        delay = parser.crawl_delay(self.options.user_agent) if parser is not None else None
        return float(delay or 0.0)

    # ---- fetching ---------------------------------------------------------------

    async def fetch(self, url: str, *, image: bool = True) -> FetchResult:
        """Fetch ``url`` following redirects; never raises for a bad URL or
        response: the result carries a rejection reason instead. A redirect
        to a URL that is malformed or not http(s) fails the download
        (``download_failed``), its detail naming both URLs."""
        seen: set[str] = set()
        current = url
        for _ in range(self.options.max_redirects + 1):
            if current in seen:
                return FetchResult(url, current, reason="download_failed", detail=f"{shown(url)}: redirect loop at {shown(current)}")
            seen.add(current)
            try:
                _, host, port = check_url(current)
                await check_address(host, port, self.allow_private, self._dns)
                origin = origin_of(current)
                if self.options.robots:
                    parser = await self.robots(origin)
                    if not parser.can_fetch(current, self.options.user_agent):
                        why = robots_note(self.robots_texts.get(origin, ""))
                        return FetchResult(url, current, reason="robots_disallowed",
                                           detail=f"{shown(current)}: disallowed by {origin}/robots.txt{why}")
            except UrlRefused as exc:
                if current != url and exc.reason == "bad_url":
                    # The URL listed was fine; the server's redirect was not.
                    return FetchResult(url, current, reason="download_failed",
                                       detail=f"{shown(url)}: redirected to an unusable URL: {exc.detail}")
                detail = exc.detail if exc.detail.startswith(shown(current)) else f"{shown(current)}: {exc.detail}"
                return FetchResult(url, current, reason=exc.reason, detail=detail, retryable=exc.reason == "download_failed")
            except ValueError as exc:  # a host name the resolver cannot encode, which check_url let through
                return FetchResult(url, current, reason="bad_url" if current == url else "download_failed",
                                   detail=f"{shown(url)}: cannot resolve the host of {shown(current)} ({exc})")
            result = await self._fetch_with_retries(url, current, host_of(current), origin, image)
            location = result.headers.get("location")
            if result.ok and result.status in (301, 302, 303, 307, 308) and location:
                current = join_url(current, location)
                continue
            return result
        return FetchResult(url, current, reason="download_failed", detail=f"{shown(url)}: more than {self.options.max_redirects} redirects")

    async def _fetch_with_retries(self, url: str, current: str, host: str, origin: str, image: bool) -> FetchResult:
        o = self.options
        last = ""
        charged = 0  # failures that count against `retries`
        connect_timeouts = 0
        for attempt in range(o.retries + 1 + MAX_FREE_ATTEMPTS):
            # The host slot first: a request waiting for a busy host must not
            # hold one of the global slots that other hosts could use. The
            # controller also holds it back while the host is paused.
            ticket = await self.hosts.acquire(host)
            ticket.attempt = attempt
            if ticket.refused:
                return self._failed(url, current, host, f"host {host} given up: {ticket.refused}")
            try:
                await self.hosts.pace(host, max(1.0 / o.host_rate if o.host_rate else 0.0, self.crawl_delay(origin)))
                connect_s = o.connect_timeout_s
                if ticket.base_s is not None:
                    fast = max(FAST_CONNECT_MIN_S, FAST_CONNECT_FACTOR * ticket.base_s) * 4 ** connect_timeouts
                    connect_s = min(connect_s, fast)
                async with self._global:
                    result = await self._request(current, host, image=image, connect_timeout_s=connect_s)
            except _Retry as exc:
                last = exc.detail
                cause = exc.cause
                if cause == REFUSED:
                    cause = DEAD if self.hosts.refused_means_dead(ticket) else BUSY
                if cause == DEAD:
                    self.hosts.give_up(ticket, f"{exc.detail} with nothing in flight")
                    return self._failed(url, current, host, f"{exc.detail}; host {host} looks dead: its other URLs fail without a request")
                connect_timeouts += exc.connect_timeout
                if cause == BUSY:
                    # Never charged: the host said "later", not "no". A fast
                    # connect timeout is not even a failure of the host (a
                    # busy client can miss so short a deadline): it cuts the
                    # window, and the URL's next connect waits longer.
                    fast = exc.connect_timeout and connect_s < o.connect_timeout_s
                    self.hosts.overloaded(ticket, exc.retry_after, exc.detail, failure=not fast)
                elif cause == OVERLOAD:
                    charged += self.hosts.overloaded(ticket, exc.retry_after, exc.detail)
                else:
                    self.hosts.failed(ticket, exc.detail)
                    charged += 1
                if exc.retry_after is not None and exc.retry_after > o.max_backoff_s:
                    return self._failed(url, current, host, f"{exc.detail}; Retry-After {exc.retry_after:.0f}s exceeds max_backoff_s={o.max_backoff_s:g}", status=exc.status)
                if charged > o.retries:
                    return self._failed(url, current, host, f"{last} (after {attempt + 1} attempts)")
                continue  # the controller waits out the host's pause before the next attempt
            finally:
                self.hosts.release(ticket)
            self.hosts.succeeded(ticket, result.ttfb_s, image=image and result.ok and result.body is not None)
            result.url = url
            return result
        return self._failed(url, current, host, f"{last} (after {o.retries + 1 + MAX_FREE_ATTEMPTS} attempts)")

    def _failed(self, url: str, current: str, host: str, detail: str, status: int | None = None) -> FetchResult:
        """A retryable download failure; its detail ends with the host's figures."""
        self.hosts.note_failed_url(host)
        return FetchResult(url, current, status=status, reason="download_failed", retryable=True,
                           detail=f"{current}: {detail}; {self.hosts.figures(host).describe()}")

    async def _request(self, url: str, host: str, *, image: bool, connect_timeout_s: float | None = None,
                       max_bytes: int | None = None) -> FetchResult:
        """One GET; raises _Retry for retryable failures. With ``max_bytes``
        the body is cut there (robots.txt) instead of refused as too_large."""
        assert self._client is not None
        o = self.options
        self.requests += 1
        fetched_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        connect_s = connect_timeout_s or o.connect_timeout_s
        # The read timeout is per chunk; a body trickled slowly is cut off by this total.
        deadline = connect_s + 2 * o.read_timeout_s
        try:
            return await asyncio.wait_for(self._get(url, image, fetched_at, connect_s, max_bytes), timeout=deadline)
        except (aiohttp.InvalidURL, ValueError) as exc:
            # check_url passed it; a URL that yarl or aiohttp still cannot
            # send is this URL's rejection, not the build's end.
            return FetchResult(url, url, reason="bad_url", detail=f"{shown(url)}: invalid URL ({exc})", fetched_at=fetched_at)
        except asyncio.TimeoutError as exc:  # aiohttp's read/connect timeouts are TimeoutErrors too
            raise _Retry(f"timeout ({type(exc).__name__}{': ' + str(exc) if str(exc) else f' after {deadline:g}s'})",
                         cause=classify(exc),
                         connect_timeout=isinstance(exc, getattr(aiohttp, "ConnectionTimeoutError", ()))) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _Retry(f"network error ({type(exc).__name__}: {exc})", cause=classify(exc)) from None

    async def _get(self, url: str, image: bool, fetched_at: str, connect_s: float, cut_at: int | None) -> FetchResult:
        assert self._client is not None
        o = self.options
        cap = cut_at if cut_at is not None else o.max_bytes
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=o.read_timeout_s)
        async with self._client.get(URL(url, encoded=True), allow_redirects=False, timeout=timeout) as response:
            status = response.status
            headers = {k.lower(): v for k, v in response.headers.items()}
            base = dict(url=url, final_url=url, status=status, headers=headers, fetched_at=fetched_at,
                        content_type=headers.get("content-type"), ttfb_s=time.monotonic() - started)
            if status in (429, 408) or status >= 500:
                # 429 and 503 are how a server says "too many at once"; with a
                # Retry-After it also says when to come back.
                retry_after = parse_retry_after(headers.get("retry-after"))
                cause = ERROR if status not in (429, 503) else OVERLOAD if retry_after is None else BUSY
                raise _Retry(f"HTTP {status}", status, retry_after, cause=cause)
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
            if cut_at is None and declared.isdigit() and int(declared) > cap:
                return FetchResult(**base, reason="too_large", detail=f"{url}: Content-Length {declared} > max_bytes={cap}")
            chunks: list[bytes] = []
            size = 0
            cut = False
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                chunks.append(chunk)
                if size > cap:  # stop now: closing drops the connection, the rest is never read
                    response.close()
                    if cut_at is None:
                        return FetchResult(**base, reason="too_large", detail=f"{url}: body passed max_bytes={cap} (aborted)")
                    cut = True
                    break
            body = b"".join(chunks)
            if "content-encoding" in headers and headers["content-encoding"].strip().lower() not in ("", "identity"):
                decoded = _decode_body(body, headers["content-encoding"], cap, keep_prefix=cut_at is not None)
                if decoded is None:
                    return FetchResult(**base, reason="too_large", detail=f"{url}: decoded body passed max_bytes={cap}")
                body = decoded
            if cut or len(body) > cap:
                # The rest is ignored; a line cut in two could read as a
                # shorter, wider rule, so the last partial line goes too.
                body = body[:cap]
                body = body[:body.rfind(b"\n") + 1]
            if image:
                problem = sniff_image(body, headers.get("content-type"))
                if problem:
                    return FetchResult(**base, reason="not_image", detail=f"{url}: {problem}")
            return FetchResult(**base, body=body)


def _decode_body(body: bytes, encoding: str, max_bytes: int, keep_prefix: bool = False) -> bytes | None:
    """Undo gzip/deflate with a cap (a compressed body may be a bomb): None
    past the cap, or with ``keep_prefix`` the first max_bytes + 1 bytes."""
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
            if len(data) > max_bytes and not keep_prefix:
                return None
        elif coding != "identity":
            return data  # unknown coding (br, zstd): leave as is; the sniffer decides
    return data
