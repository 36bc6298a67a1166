"""Web sources against hostile and broken input (issue 15): malformed URLs in a
list, in a Location header, behind a robots.txt redirect or on a crawled page;
oversized robots.txt; list columns named like gandata's own; bad lines of a
list; empty web builds; per-host figures and progress totals.

Servers run on 127.0.0.1 only; nothing here reaches the network."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gandata.cli import main
from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.pipeline import build
from gandata.sources.base import SourceContext
from gandata.sources.web import fetch as web_fetch
from gandata.sources.web.crawl import extract_page
from gandata.sources.web.fetch import origin_of
from gandata.sources.web.guard import (
    MAX_URL_CHARS,
    UrlRefused,
    check_url,
    normalize_url,
)
from gandata.sources.web.source import open_urls
from gandata.sources.web.urls import MAX_LINE_BYTES, RESERVED_COLUMNS, read_url_list
from tests.common.web_server import LocalServer, QuietHandler, png_bytes

IMAGE = ImageConfig(size_px=16, min_size_px=8)
PNG = png_bytes((200, 30, 90))
PNG2 = png_bytes((20, 130, 190))

# Spellings a URL list or a server may hold; none may abort a build.
HOSTILE = [
    "http://[::1",  # unclosed IPv6 bracket
    "http://::1]/x.png",
    "http://[::1]]/x.png",
    "http://[zz::1]/x.png",  # not an IPv6 address
    "http://[1.2.3.4]/x.png",
    "http://h:99999/x.png",  # port out of range
    "http://h:0/x.png",
    "http://h:-1/x.png",
    "http://h:abc/x.png",
    "http://h/\x01x.png",  # control characters
    "http://h\x00/x.png",
    "http://h/a\tb.png",
    "http://exa mple.com/x.png",  # whitespace in the host
    "http://" + "a" * 64 + ".com/x.png",  # DNS label over 63 characters
    "http://xn--/x.png",  # invalid IDNA
    "http://\u2100.com/x.png",
    "ftp://h/x.png", "file:///etc/passwd", "javascript:alert(1)", "data:image/png;base64,AAAA",
    "gopher://h/", "//h/x.png", "http:///x.png", "http://", "http://@/x.png",
    "http://h/" + "a" * (MAX_URL_CHARS + 1),  # very long
]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer (the robots.txt cap does) is expected here


class RouteServer(LocalServer):
    """A tiny HTTP server on 127.0.0.1: ``routes`` maps a path to (status,
    headers, body); unknown paths answer 404. Counts requests and body bytes
    sent per path."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.routes = routes
        self.counts: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.counts[path] += 1
                status, headers, body = server.routes.get(path, (404, {}, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    for start in range(0, len(body), 1 << 16):
                        self.wfile.write(body[start:start + (1 << 16)])
                        server.sent[path] += len(body[start:start + (1 << 16)])
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._serve(_QuietServer(("127.0.0.1", 0), Handler))


def _image(body: bytes = PNG) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "image/png"}, body


def _config(tmp_path: Path, uri: str, params: dict[str, str] | None = None, **kw: Any) -> BuildConfig:
    kw.setdefault("allow_private_network", True)
    kw.setdefault("executor", "serial")
    kw.setdefault("clean", CleanConfig(enabled=False))
    return BuildConfig(sources=(SourceSpec(uri, params=params or {}),), output=str(tmp_path / "out"), image=IMAGE, **kw)


def _rejected(out: Path) -> list[dict[str, Any]]:
    with open(out / "rejected.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# ---- bug 7: malformed URLs are rejections, never tracebacks ---------------------------------


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_url_spellings_are_refused_not_raised(url: str) -> None:
    normalized = normalize_url(url)  # never raises
    origin_of(url)  # never raises
    with pytest.raises(UrlRefused) as info:
        check_url(normalized)
    assert info.value.reason == "bad_url"
    assert len(info.value.detail) < 600  # names the URL, but a long one shortened


def test_valid_spellings_still_pass() -> None:
    assert check_url("http://[::1]:8080/x.png") == ("http", "::1", 8080)
    assert check_url("HTTPS://Example.COM/a%20b.png?x=1") == ("https", "example.com", 443)
    assert check_url("http://b\u00fccher.example/x.png")[1] == "b\u00fccher.example"
    assert check_url("http://under_score.example/x.png")[1] == "under_score.example"


def test_malformed_urls_in_a_list_are_counted_rejections(tmp_path: Path) -> None:
    with RouteServer({"/ok.png": _image()}) as server:
        lines = HOSTILE + [server.url("/ok.png")]
        (tmp_path / "l.txt").write_bytes("\n".join(u.replace("\n", " ") for u in lines).encode("utf-8") + b"\n")
        summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}"))
    assert summary.num_samples == 1
    rejected = _rejected(tmp_path / "out")
    # txt lines are stripped and split on line breaks: every hostile line but
    # the ones that are empty after stripping gives one rejection.
    assert len(rejected) == len(HOSTILE)
    assert {r["reason"] for r in rejected} == {"bad_url"}
    assert all(r["detail"] for r in rejected)
    assert any("http://[::1" in r["detail"] for r in rejected)


def test_malformed_location_header_is_a_rejection_of_that_url(tmp_path: Path) -> None:
    routes = {
        "/ok.png": _image(),
        "/to-bad-ipv6": (302, {"Location": "http://[::1"}, b""),
        "/to-bad-port": (301, {"Location": "http://127.0.0.1:99999/x.png"}, b""),
        "/to-ftp": (302, {"Location": "ftp://127.0.0.1/x.png"}, b""),
        "/to-bad-host": (302, {"Location": "http://exa mple.com/x.png"}, b""),
    }
    with RouteServer(routes) as server:
        (tmp_path / "l.txt").write_text("".join(server.url(p) + "\n" for p in routes))
        summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}"))
    assert summary.num_samples == 1
    rejected = {r["key"]: r for r in _rejected(tmp_path / "out")}
    for path in ("/to-bad-ipv6", "/to-bad-port", "/to-ftp", "/to-bad-host"):
        record = rejected[server.url(path)]
        assert record["reason"] == "download_failed", record
        assert server.url(path) in record["detail"] and "redirect" in record["detail"], record


def test_robots_redirect_to_a_malformed_url_disallows_that_host_only(tmp_path: Path) -> None:
    with RouteServer({"/ok.png": _image()}) as good, RouteServer({
        "/robots.txt": (302, {"Location": "http://[::1"}, b""), "/ok.png": _image(PNG2),
    }) as bad, RouteServer({
        "/robots.txt": (302, {"Location": "http://10.0.0.1:99999/robots.txt"}, b""), "/ok.png": _image(PNG2),
    }) as worse:
        (tmp_path / "l.txt").write_text(f"{good.url('/ok.png')}\n{bad.url('/ok.png')}\n{worse.url('/ok.png')}\n")
        summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}"))
        assert bad.counts["/ok.png"] == 0 and worse.counts["/ok.png"] == 0
    assert summary.num_samples == 1
    rejected = {r["key"]: r for r in _rejected(tmp_path / "out")}
    for server in (bad, worse):
        record = rejected[server.url("/ok.png")]
        assert record["reason"] == "robots_disallowed"
        assert "robots.txt" in record["detail"] and "redirect" in record["detail"], record


def test_malformed_links_on_a_crawled_page(tmp_path: Path) -> None:
    page = (
        '<html><head><base href="http://[::1"></head><body>'
        '<img src="/ok.png"><img src="http://[::1/x.png"><img src="http://127.0.0.1:99999/y.png">'
        '<img srcset="http://[bad 2x, /ok.png 1x"><a href="http://[::1/next.html">next</a>'
        '<a href="http://h:99999/">port</a><a href="page2.html">ok</a></body></html>'
    )
    assert extract_page(page, "http://h/index.html").images  # never raises
    routes = {"/index.html": (200, {"Content-Type": "text/html"}, page.encode()), "/ok.png": _image(),
              "/page2.html": (200, {"Content-Type": "text/html"}, b"<img src='/ok2.png'>"), "/ok2.png": _image(PNG2)}
    with RouteServer(routes) as server:
        summary = build(_config(tmp_path, f"crawl:{server.url('/index.html')}"))
        assert server.counts["/page2.html"] == 1
    assert summary.num_samples == 2
    rejected = _rejected(tmp_path / "out")
    bad = [r for r in rejected if r["reason"] == "bad_url"]
    assert any("http://[::1/x.png" in r["detail"] for r in bad)
    assert any("99999" in r["detail"] for r in bad)
    assert any("next.html" in r["detail"] and "link" in r["detail"] for r in bad)  # a link, not followed


# ---- item 5: a web build that keeps nothing fails -------------------------------------------


def test_cli_web_build_with_every_url_refused_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("http://[::1\nftp://h/x.png\n")
    args = ["build", f"urls:{tmp_path / 'l.txt'}", "-o", str(tmp_path / "o"), "--size", "16", "--min-size", "8",
            "--executor", "serial"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "no sample kept (2 rejected: bad_url 2)" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o" / "manifest.json").exists()
    allowed = CliRunner().invoke(main, args + ["--allow-empty"])
    assert allowed.exit_code == 0, allowed.output
    assert "0 samples" in allowed.output and "rejected bad_url: 2" in allowed.output


# ---- robots.txt: size cap, parsed once --------------------------------------------------------


def test_robots_txt_is_capped_not_refused(tmp_path: Path) -> None:
    cap = 500 * 1024  # docs/WEB.md: the first 500 KiB are read, the rest ignored
    padding = ("# " + "x" * 98 + "\n") * (cap // 100 + 1000)  # past the cap
    head = "User-agent: *\nDisallow: /private/\n"
    tail = "Disallow: /late/\n"  # beyond the cap: ignored, as major crawlers do
    routes = {"/robots.txt": (200, {"Content-Type": "text/plain"}, (head + padding + tail).encode()),
              "/private/a.png": _image(), "/late/b.png": _image(PNG2), "/ok.png": _image(png_bytes((9, 99, 199)))}
    with RouteServer(routes) as server:
        (tmp_path / "l.txt").write_text("".join(server.url(p) + "\n" for p in ("/private/a.png", "/late/b.png", "/ok.png")))
        # max_bytes (the image cap) is smaller than robots.txt: it must not
        # turn the file into "too large, so allow everything".
        summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}", {"max_bytes": "100000"}))
        assert server.counts["/private/a.png"] == 0
        assert server.counts["/robots.txt"] == 1
    assert summary.num_samples == 2
    rejected = {r["key"]: r["reason"] for r in _rejected(tmp_path / "out")}
    assert rejected == {server.url("/private/a.png"): "robots_disallowed"}


def test_robots_txt_parsed_once_per_host_per_build(tmp_path: Path) -> None:
    routes = {"/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")}
    routes.update({f"/{i}.png": _image(png_bytes((i * 40, 255 - i * 40, 90))) for i in range(5)})
    with RouteServer(routes) as server:
        (tmp_path / "l.txt").write_text("".join(server.url(f"/{i}.png") + "\n" for i in range(5)))
        web_fetch.parse_robots.cache_clear()
        summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}", {"batch": "1"}))
        assert summary.num_samples == 5
        # Five partitions, one host: one parse (the parent's; the serial
        # executor's worker finds it in the same process).
        assert web_fetch.parse_robots.cache_info().misses == 1


# ---- reserved provenance columns --------------------------------------------------------------


def test_list_columns_never_overwrite_gandata_columns(tmp_path: Path) -> None:
    with RouteServer({"/ok.png": _image()}) as server:
        header = "url,label,synthetic,origin,license,synth_run,fetched_at,shard,url_origin,caption"
        row = f"{server.url('/ok.png')},cat,0,evil,cc0,/tmp/run,never,7,mine,a cat"
        (tmp_path / "l.csv").write_text(header + "\n" + row + "\n")
        summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.csv'}"))
    assert summary.num_samples == 1
    (sample,) = pq.read_table(tmp_path / "out" / "samples.parquet").to_pylist()
    assert sample["synthetic"] is False
    assert sample["origin"] == server.url("/ok.png") and sample["license"] == "unknown"
    assert sample["synth_run"] is None if "synth_run" in sample else True
    assert sample["shard"] == 0 and sample["fetched_at"] != "never"
    # The list's values are kept, under a prefixed name.
    assert (sample["url_synthetic"], sample["url_license"], sample["url_synth_run"]) == ("0", "cc0", "/tmp/run")
    assert (sample["url_fetched_at"], sample["url_shard"]) == ("never", "7")
    assert sample["url_origin"] == "mine" and sample["url_url_origin"] == "evil"
    assert sample["caption"] == "a cat" and sample["class_name"] == "cat"


def test_reserved_columns_cover_what_gandata_writes(tmp_path: Path) -> None:
    with RouteServer({"/ok.png": _image()}) as server:
        (tmp_path / "l.csv").write_text(f"url,caption\n{server.url('/ok.png')},x\n")
        build(_config(tmp_path, f"urls:{tmp_path / 'l.csv'}"))
    columns = set(pq.read_table(tmp_path / "out" / "samples.parquet").column_names)
    assert columns - {"caption"} <= RESERVED_COLUMNS


# ---- URL lists read line by line ------------------------------------------------------------


def test_bad_lines_are_rejections_not_a_refused_list(tmp_path: Path) -> None:
    huge = json.dumps({"url": "http://h/" + "a" * (MAX_LINE_BYTES + 10) + ".png"})
    lines = [
        json.dumps({"url": "http://h/1.png", "label": "a"}),
        "{not json",
        "[" * 60_000,  # deep nesting: json raises RecursionError
        "[1, 2]",
        json.dumps({"url": 5}),
        json.dumps({"label": "no url"}),
        huge,
        json.dumps({"url": "http://h/2.png", "label": {"nested": 1}}),
        json.dumps({"url": "http://h/3.png"}),
    ]
    path = tmp_path / "l.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe\n" + json.dumps({"url": "http://h/4.png"}).encode() + b"\n")
    entries = read_url_list(str(path))
    good = [e.url for e in entries if e.rejected is None]
    assert good == ["http://h/1.png", "http://h/3.png", "http://h/4.png"]
    bad = {e.line: e.rejected for e in entries if e.rejected is not None}
    assert sorted(bad) == [2, 3, 4, 5, 6, 7, 8, 10]
    assert all(reason == "bad_url" and f"line {line}" in detail for line, (reason, detail) in bad.items())
    assert "longer than" in bad[7][1] and len(bad[7][1]) < 500


def test_bad_csv_rows_and_txt_lines(tmp_path: Path) -> None:
    csv_path = tmp_path / "l.csv.gz"
    with gzip.open(csv_path, "wb") as fh:
        fh.write(b"url,label\nhttp://h/1.png,a\nhttp://h/2.png,b\xffc\n,empty\nhttp://h/3.png," + b"z" * (MAX_LINE_BYTES + 1) + b"\n"
                 b"http://h/4.png,d\n")
    entries = read_url_list(str(csv_path))
    assert [e.url for e in entries if e.rejected is None] == ["http://h/1.png", "http://h/4.png"]
    assert len([e for e in entries if e.rejected is not None]) == 3
    txt = tmp_path / "l.txt"
    txt.write_bytes(b"\xef\xbb\xbfhttp://h/1.png\nhttp://h/\xff.png\n" + b"x" * (3 * MAX_LINE_BYTES) + b"\nhttp://h/2.png")
    entries = read_url_list(str(txt))
    assert [e.url for e in entries if e.rejected is None] == ["http://h/1.png", "http://h/2.png"]
    assert [e.line for e in entries if e.rejected is not None] == [2, 3]


# ---- per-host figures and progress totals -----------------------------------------------------


def test_partitions_know_their_url_counts(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("".join(f"http://[::1/{i}\n" for i in range(5)))
    source = open_urls(f"urls:{tmp_path / 'l.txt'}?batch=2", SourceSpec("x"), SourceContext())
    assert [p.num_inputs for p in source.partitions()] == [2, 2, 1]


def test_build_summary_and_cli_report_each_host(tmp_path: Path) -> None:
    routes = {f"/{i}.png": _image(png_bytes((i * 60, 90, 255 - i * 60))) for i in range(3)}
    with RouteServer(routes) as server:
        (tmp_path / "l.txt").write_text("".join(server.url(p) + "\n" for p in routes))
        seen: list[tuple[str, int, int | None]] = []
        summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}", {"batch": "2"}),
                        progress=lambda phase, done, total: seen.append((phase, done, total)))
        (line,) = summary.web_hosts
        assert line.startswith(f"host 127.0.0.1:{server.port}: ") and " requests, " in line
        assert ("ingest", 0, 3) in seen and ("ingest", 3, 3) in seen
        result = CliRunner().invoke(main, [
            "build", f"urls:{tmp_path / 'l.txt'}", "-o", str(tmp_path / "cli"), "--size", "16", "--min-size", "8",
            "--executor", "serial", "--allow-private-network", "--no-clean"])
    assert result.exit_code == 0, result.output
    assert f"host 127.0.0.1:{server.port}:" in result.output


# ---- seeded fuzz: mutated URLs through every parsing step ---------------------------------------

_PIECES = ["[", "]", ":", "@", "%", "#", "?", "/", "\\", "\x00", "\t", "\n", " ", "\u2100", "\u00e9", "99999", ":0",
           "xn--", "[::1", "::1]", "..", "//", "http://", "ftp:", "%zz", "\x7f", "\ufeff", "a" * 70, "'", '"', ","]


def _mutate(rng: random.Random, url: str) -> str:
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(url))
        cut = rng.randint(0, 3) if rng.random() < 0.3 else 0
        url = url[:at] + rng.choice(_PIECES) + url[at + cut:]
    return url


def test_mutated_urls_never_raise(tmp_path: Path) -> None:
    rng = random.Random(15)
    seeds = ["http://h/a.png", "https://[::1]:8080/p/q.jpg?x=1#f", "http://user:pw@example.org:81/x", "http://b\u00fccher.de/"]
    urls = [_mutate(rng, rng.choice(seeds)) for _ in range(400)]
    for url in urls:
        normalized = normalize_url(url)
        origin_of(url)
        try:
            check_url(normalized)
        except UrlRefused as exc:
            assert exc.reason == "bad_url" and exc.detail
    page = "".join(f'<img src="{u}"><a href="{u}">x</a><base href="{u}">' for u in urls[:100])
    extract_page(page, "http://h/index.html")
    # The same URLs as list lines, in every text format: one entry per line, whatever it holds.
    (tmp_path / "l.txt").write_text("\n".join(u.replace("\n", "") for u in urls), encoding="utf-8")
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps({"url": u, "label": u[:5]}) for u in urls), encoding="utf-8")
    with open(tmp_path / "l.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "label"])
        writer.writerows([u, "x"] for u in urls)
    # (Not planned into partitions: the valid ones would send DNS queries for robots.txt.)
    for name in ("l.txt", "l.jsonl", "l.csv"):
        entries = read_url_list(str(tmp_path / name))
        assert len(entries) >= 0.9 * len(urls), name  # a few become blank or "#" lines, or CSV-split
        for entry in entries:
            if entry.rejected is None:
                try:
                    check_url(normalize_url(entry.url))
                except UrlRefused as exc:
                    assert exc.reason == "bad_url"
