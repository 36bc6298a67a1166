"""A real HTTP server on 127.0.0.1 for the web source tests and benchmark.

It serves gallery pages with every image markup, a robots.txt that disallows
/private/, and endpoints that misbehave (flaky, 429, slow, redirects, loop,
404, HTML served as image/jpeg, oversized bodies, X-Robots-Tag: noai). It
counts requests per path and the most requests in flight at once.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


def png_bytes(colour: tuple[int, int, int], size: int = 32) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (size, size), colour)
    # A gradient corner so images are not flagged as low information.
    for i in range(size):
        img.putpixel((i, i), (255 - colour[0], 255 - colour[1], 255 - colour[2]))
    img.save(buf, format="PNG")
    return buf.getvalue()


GALLERY = """<!doctype html><html><head><title>cats</title>
<meta property="og:image" content="/img/og.png">
</head><body>
<img src="/img/plain.png">
<img src="/img/small.png" srcset="/img/small.png 100w, /img/large.png 800w, /img/medium.png 400w">
<img data-src="/img/lazy.png" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<img data-srcset="/img/lazy1x.png 1x, /img/lazy2x.png 2x">
<picture><source srcset="../img/picture.png"><img src="/img/fallback.png"></picture>
<img src="/private/hidden.png">
<a href="page2.html">next</a> <a href="/private/secret.html">secret</a>
<a href="noai.html">noai</a> <a href="http://example.invalid/elsewhere.html">elsewhere</a>
</body></html>"""

PAGE2 = """<html><body><img src="../img/page2.png"><img src="/img/plain.png"><a href="index.html">back</a>
<a href="deep.html">deeper</a></body></html>"""
DEEP = """<html><body><img src="/img/deep.png"></body></html>"""
NOAI_PAGE = """<html><head><meta name="robots" content="noindex, noai"></head><body><img src="/img/forbidden.png"></body></html>"""


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (test output stays readable)."""

    def log_message(self, *args: Any) -> None:
        pass


class LocalServer:
    """An HTTP server on 127.0.0.1 served from a thread for the length of a
    ``with`` block; subclasses make the server and call ``_serve``."""

    httpd: ThreadingHTTPServer
    port: int

    def _serve(self, httpd: ThreadingHTTPServer, poll_interval: float = 0.5) -> None:
        self.httpd = httpd
        self.port = httpd.server_address[1]
        self.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class WebServer(LocalServer):
    """Start with ``with WebServer() as server:``; ``server.url(path)``."""

    def __init__(self, image_delay_s: float = 0.0, n_images: int = 0, nagle: bool = False) -> None:
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.huge_bytes_sent = 0
        self.image_delay_s = image_delay_s
        self.fail_paths: set[str] = set()  # paths answering 503 while listed
        self.times: dict[str, list[float]] = {}  # path -> arrival times (monotonic)
        self.lock = threading.Lock()
        self.images = {f"/img/{name}.png": png_bytes(((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
                       for i, name in enumerate(["plain", "small", "large", "medium", "lazy", "lazy1x", "lazy2x", "picture",
                                                 "fallback", "og", "page2", "deep", "forbidden", "red", "ok", "noai", "later"])}
        for i in range(n_images):
            self.images[f"/bench/{i}.png"] = png_bytes(((i * 7) % 256, (i * 13) % 256, (i * 29) % 256), 64)
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle
            # plus delayed ACKs stall every keep-alive response by ~40 ms
            # (unless the client ACKs at once; ``nagle=True`` shows it).
            disable_nagle_algorithm = not nagle

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server.lock:
                    server.counts[path] += 1
                    server.times.setdefault(path, []).append(time.monotonic())
                    server.counts[f"{self.headers.get('Host', '').split(':')[0]} {path}"] += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    count = server.counts[path]
                try:
                    server.handle(self, path, count)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

        ThreadingHTTPServer.request_queue_size = 256
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._serve(httpd)

    def handle(self, h: BaseHTTPRequestHandler, path: str, count: int) -> None:
        host = h.headers.get("Host", "").split(":")[0]
        if path == "/robots.txt":
            delay = "Crawl-delay: 0.3\n" if host == "localhost" else ""
            return self.send(h, 200, b"User-agent: *\nDisallow: /private/\n" + delay.encode(), "text/plain")
        if path in self.fail_paths:
            return self.send(h, 503, b"down", "text/plain")
        if path in self.images:
            if self.image_delay_s:
                time.sleep(self.image_delay_s)
            headers = {"X-Robots-Tag": "noai, noimageai"} if path == "/img/noai.png" else {}
            return self.send(h, 200, self.images[path], "image/png", headers)
        pages = {"/gallery/index.html": GALLERY, "/gallery/page2.html": PAGE2, "/gallery/deep.html": DEEP,
                 "/gallery/noai.html": NOAI_PAGE}
        if path in pages:
            return self.send(h, 200, pages[path].encode(), "text/html; charset=utf-8")
        if path == "/flaky.png":  # 500 then 200
            return self.send(h, 500, b"oops", "text/plain") if count == 1 else self.send(h, 200, self.images["/img/medium.png"], "image/png")
        if path == "/ratelimited.png":  # 429 with Retry-After then 200
            if count == 1:
                return self.send(h, 429, b"slow down", "text/plain", {"Retry-After": "1"})
            return self.send(h, 200, self.images["/img/red.png"], "image/png")
        if path == "/slow.png":
            time.sleep(3)
            return self.send(h, 200, self.images["/img/red.png"], "image/png")
        if path.startswith("/redirect/"):
            step = int(path.rsplit("/", 1)[1])
            target = f"/redirect/{step + 1}" if step < 3 else "/img/later.png"
            return self.send(h, 302, b"", "text/plain", {"Location": target})
        if path == "/to-private.png":  # a redirect into a robots.txt-disallowed path
            return self.send(h, 302, b"", "text/plain", {"Location": "/private/y.png"})
        if path in ("/loop/a", "/loop/b"):
            return self.send(h, 301, b"", "text/plain", {"Location": "/loop/b" if path == "/loop/a" else "/loop/a"})
        if path == "/fake.jpg":
            return self.send(h, 200, b"<!DOCTYPE html><html><body>Not found</body></html>", "image/jpeg")
        if path == "/huge.png":  # no Content-Length: streamed until the client hangs up
            h.send_response(200)
            h.send_header("Content-Type", "image/png")
            h.send_header("Connection", "close")
            h.end_headers()
            chunk = self.images["/img/red.png"] + b"\0" * (64 * 1024)
            for _ in range(2000):  # ~128 MB if read to the end
                h.wfile.write(chunk)
                with self.lock:
                    self.huge_bytes_sent += len(chunk)
            return None
        if path == "/huge-declared.png":
            h.send_response(200)
            h.send_header("Content-Type", "image/png")
            h.send_header("Content-Length", str(1 << 30))
            h.send_header("Connection", "close")
            h.end_headers()
            return None
        return self.send(h, 404, b"not found", "text/plain")

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(body)


class _SmallBacklogServer(ThreadingHTTPServer):
    # http.server's own default; a small queue overflows when many connections
    # arrive at once, and the kernel then drops SYNs (1-3-7 s retransmits).
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, backlog: int) -> None:
        self.request_queue_size = backlog
        super().__init__(address, handler)


class FragileServer(LocalServer):
    """A small server of the kind much of the web runs on: a threaded Python
    ``http.server`` speaking HTTP/1.0 (one connection per request, closed
    after the answer), an accept backlog of ``backlog``, Nagle left on and
    headers and body written separately (as http.server does).

    ``max_in_flight`` makes it fragile on purpose: a connection arriving while
    that many are being served (each image takes ``delay_s``) is reset without an answer (``busy_status``
    None) or answered ``busy_status`` (429 or 503) with ``Retry-After:
    retry_after``. It serves ``/bench/{i}.png`` for ``i < n_images`` and a
    robots.txt that allows everything; it counts answers by status, requests
    per path and the most connections served at once.
    """

    def __init__(self, n_images: int = 0, *, backlog: int = 5, max_in_flight: int | None = None,
                 busy_status: int | None = None, retry_after: str | None = None, image_px: int = 64,
                 crawl_delay_s: float | None = None, delay_s: float = 0.0) -> None:
        self.counts: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()  # "200", "429", "reset", ...
        self.in_flight = 0
        self.max_in_flight = 0  # most connections served at once, refused ones included
        self.max_served = 0  # most answered with an image at once
        self.serving = 0
        self.times: list[float] = []  # arrival times of image requests served (monotonic)
        self.arrivals: list[float] = []  # arrival times of every request but robots.txt
        self.answers: list[tuple[str, float]] = []  # (status or "reset", time) of every answer
        self.lock = threading.Lock()
        self.limit = max_in_flight
        self.delay_s = delay_s  # time each image takes to serve, so requests overlap
        self.busy_status = busy_status
        self.retry_after = retry_after
        self.robots = b"User-agent: *\nAllow: /\n" + (f"Crawl-delay: {crawl_delay_s}\n".encode() if crawl_delay_s else b"")
        self.images = {f"/bench/{i}.png": png_bytes(((i * 7) % 256, (i * 13) % 256, (i * 29) % 256), image_px)
                       for i in range(n_images)}
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server.lock:
                    server.counts[path] += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    busy = server.limit is not None and server.in_flight > server.limit and path != "/robots.txt"
                    if path != "/robots.txt":
                        server.arrivals.append(time.monotonic())
                    if not busy and path in server.images:
                        server.serving += 1
                        server.max_served = max(server.max_served, server.serving)
                        server.times.append(time.monotonic())
                try:
                    if busy:
                        server._refuse(self)
                    elif path == "/robots.txt":
                        server._send(self, 200, server.robots, "text/plain")
                    elif path in server.images:
                        try:
                            if server.delay_s:
                                time.sleep(server.delay_s)
                            server._send(self, 200, server.images[path], "image/png")
                        finally:
                            with server.lock:
                                server.serving -= 1
                    else:
                        server._send(self, 404, b"not found", "text/plain")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    server._leave(self)

        self._serve(_SmallBacklogServer(("127.0.0.1", 0), Handler, backlog), poll_interval=0.05)

    def image_urls(self, host: str = "127.0.0.1") -> list[str]:
        return [self.url(path, host) for path in self.images]

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.statuses[str(status)] += 1
            self.answers.append((str(status), time.monotonic()))
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()  # one write for the headers ...
        # Out of flight as the last write starts: once it returns the client
        # may have its answer and send the next request before this thread
        # runs again, and counting both would see a concurrency that never was.
        self._leave(h)
        h.wfile.write(body)  # ... and another for the body

    def _leave(self, h: BaseHTTPRequestHandler) -> None:
        if not getattr(h, "_left", False):
            h._left = True  # type: ignore[attr-defined]
            with self.lock:
                self.in_flight -= 1

    def _refuse(self, h: BaseHTTPRequestHandler) -> None:
        if self.busy_status is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return self._send(h, self.busy_status, b"busy", "text/plain", headers)
        with self.lock:
            self.statuses["reset"] += 1
            self.answers.append(("reset", time.monotonic()))
        # SO_LINGER 0: close with a RST, as an overwhelmed server or proxy does.
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        h.connection.close()
