"""Web sources against a real HTTP server on 127.0.0.1 (tests/common/web_server.py).

Politeness is asserted from the server's own request counts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gandata.cli import main
from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.errors import SourceError
from gandata.pipeline import build
from gandata.sources.base import SourceContext
from gandata.sources.web.crawl import apply_label_rule, extract_page, largest_candidate
from gandata.sources.web.fetch import noai_directives, parse_retry_after
from gandata.sources.web.guard import is_public, sniff_image
from gandata.sources.web.options import parse_options
from gandata.sources.web.source import open_crawl, open_urls
from gandata.sources.web.urls import read_url_list
from tests.common.web_server import GALLERY, WebServer

IMAGE = ImageConfig(size_px=16, min_size_px=8)


@pytest.fixture
def server():
    with WebServer(image_delay_s=0.02) as s:
        yield s


def _config(tmp_path: Path, uri: str, params: dict[str, str] | None = None, **kw) -> BuildConfig:
    kw.setdefault("allow_private_network", True)
    kw.setdefault("executor", "serial")
    # These tests check fetching; the server's images are flat colours that
    # the (default-on) low-information and near-duplicate checks would drop.
    kw.setdefault("clean", CleanConfig(enabled=False))
    return BuildConfig(sources=(SourceSpec(uri, params=params or {}),), output=str(tmp_path / "out"), image=IMAGE, **kw)


def _rejections(out: Path) -> dict[str, str]:
    """URL -> reason from rejected.jsonl (repeated URLs left out)."""
    with open(out / "rejected.jsonl", encoding="utf-8") as fh:
        return {r["key"]: r["reason"] for r in map(json.loads, fh) if r["reason"] != "duplicate"}


# ---- pure parts ---------------------------------------------------------------------------


def test_extract_page_finds_every_markup() -> None:
    page = extract_page(GALLERY, "http://h/gallery/index.html")
    assert page.images == [
        "http://h/img/og.png", "http://h/img/plain.png", "http://h/img/small.png", "http://h/img/large.png",
        "http://h/img/lazy.png", "http://h/img/lazy2x.png", "http://h/img/picture.png", "http://h/img/fallback.png",
        "http://h/private/hidden.png",
    ]
    assert not any(u.startswith("data:") for u in page.images)
    assert "http://h/gallery/page2.html" in page.links and "http://example.invalid/elsewhere.html" in page.links


def test_srcset_and_directives() -> None:
    assert largest_candidate("a.jpg 1x, b.jpg 3x, c.jpg 2x") == "b.jpg"
    assert largest_candidate("a.jpg 100w, b.jpg 50w") == "a.jpg"
    assert noai_directives(["noindex, NoAI", "otherbot: noimageai"], ("noai", "noimageai")) == ["noai", "noimageai"]
    assert noai_directives(["noindex"], ("noai",)) == []
    assert parse_retry_after("7") == 7.0 and parse_retry_after(None) is None


def test_guards() -> None:
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0"):
        assert not is_public(address), address
    assert is_public("93.184.216.34")
    assert sniff_image(b"<!DOCTYPE html><html>", "image/jpeg") is not None
    assert sniff_image(b"\x89PNG\r\n\x1a\n....", "text/html") is None


def test_label_rules() -> None:
    page, img = "http://h/gallery/cats/index.html", "http://h/img/cat_01.png"
    assert apply_label_rule("segment:1", img, page, None) == "cats"
    assert apply_label_rule(r"regex:/img/([a-z]+)_", img, page, None) == "cat"
    assert apply_label_rule("page", img, page, None) == "gallery/cats/index"
    assert apply_label_rule("fixed:x", img, page, None) == "x"
    assert apply_label_rule(None, img, page, "listed") == "listed"


def test_url_list_formats(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("# comment\nhttp://h/1.png\n\nhttp://h/2.png\n")
    (tmp_path / "a.tsv").write_text("url\tlabel\tlicense\nhttp://h/1.png\tcat\tcc0\n")
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"url": "http://h/1.png", "label": "dog", "caption": "a dog"}) + "\n")
    pq.write_table(pa.table({"url": ["http://h/1.png"], "label": ["cow"]}), tmp_path / "a.parquet")
    assert [e.url for e in read_url_list(str(tmp_path / "a.txt"))] == ["http://h/1.png", "http://h/2.png"]
    tsv = read_url_list(str(tmp_path / "a.tsv"))[0]
    # A list's license column is kept, but never as gandata's own `license` column.
    assert (tsv.label, tsv.extra) == ("cat", (("url_license", "cc0"),))
    assert read_url_list(str(tmp_path / "a.jsonl.gz"))[0].extra == (("caption", "a dog"),)
    assert read_url_list(str(tmp_path / "a.parquet"))[0].label == "cow"
    (tmp_path / "bad.csv").write_text("link\nhttp://h/1.png\n")
    with pytest.raises(SourceError, match="no 'url' column"):
        read_url_list(str(tmp_path / "bad.csv"))


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("http://h/1.png\n")
    with pytest.raises(SourceError, match="unknown web option 'bogus'"):
        open_urls(f"urls:{tmp_path / 'l.txt'}?bogus=1", SourceSpec("x"), SourceContext())
    with pytest.raises(SourceError, match="concurrency"):
        parse_options("urls:x", {}, {"concurrency": "0"})
    with pytest.raises(SourceError, match="only http and https"):
        open_crawl("crawl:ftp://h/x", SourceSpec("x"), SourceContext())


# ---- against the server -------------------------------------------------------------------


def test_crawl_is_polite_and_records_provenance(tmp_path: Path, server: WebServer) -> None:
    uri = f"crawl:{server.url('/gallery/index.html')}"
    config = _config(tmp_path, uri, {"host_concurrency": "2", "label": "segment:0", "batch": "3"}, executor="process", workers=2)
    summary = build(config)
    out = Path(config.output)
    rejected = _rejections(out)
    # Every markup's image downloaded: og, plain, small, large, lazy, lazy2x, picture, fallback, page2, deep.
    assert summary.num_samples == 10
    assert rejected[server.url("/private/hidden.png")] == "robots_disallowed"
    assert rejected[server.url("/private/secret.html")] == "robots_disallowed"
    assert rejected[server.url("/img/forbidden.png")] == "noai"  # meta robots noai on its page
    assert not any(path.startswith("/private/") for path in server.counts)
    assert server.counts["/img/forbidden.png"] == 0  # noai page: never downloaded
    assert server.counts["/robots.txt"] == 1
    assert server.counts["/img/plain.png"] == 1  # on two pages, downloaded once
    assert server.max_in_flight <= 2
    table = pq.read_table(out / "samples.parquet").to_pylist()
    row = next(r for r in table if r["url"] == server.url("/img/lazy.png"))
    assert row["page_url"] == server.url("/gallery/index.html")
    assert row["http_status"] == 200 and len(row["content_sha256"]) == 64 and row["fetched_at"]
    assert row["class_name"] == "gallery"


def test_crawl_limits(tmp_path: Path, server: WebServer) -> None:
    uri = f"crawl:{server.url('/gallery/index.html')}"
    build(_config(tmp_path, uri, {"max_depth": "0"}))
    assert server.counts["/gallery/page2.html"] == 0 and server.counts["/img/deep.png"] == 0
    build(_config(tmp_path / "b", uri + "#max_pages=2&exclude=noai"))
    assert server.counts["/gallery/page2.html"] == 1 and server.counts["/gallery/noai.html"] == 0
    assert server.counts["/gallery/deep.html"] == 0


def test_url_list_failures_are_counted_rejections(tmp_path: Path, server: WebServer) -> None:
    urls = {
        "/img/ok.png": None, "/flaky.png": None, "/ratelimited.png": None, "/redirect/1": None,
        "/slow.png": "download_failed", "/loop/a": "download_failed", "/missing.png": "download_failed",
        "/fake.jpg": "not_image", "/huge.png": "too_large", "/huge-declared.png": "too_large",
        "/img/noai.png": "noai", "/private/x.png": "robots_disallowed",
        "/to-private.png": "robots_disallowed",  # every redirect hop is checked
    }
    lines = ["url,label,license"] + [f"{server.url(p)},a,cc0" for p in urls]
    lines += [f"{server.url('/img/ok.png')}#again,a,cc0", "ftp://h/x.png,a,cc0"]
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    params = {"read_timeout_s": "0.5", "connect_timeout_s": "0.5", "retries": "1", "backoff_s": "0.05", "max_bytes": "200000"}
    summary = build(_config(tmp_path, f"urls:{tmp_path / 'list.csv'}", params))
    out = tmp_path / "out"
    rejected = _rejections(out)
    for path, reason in urls.items():
        assert rejected.get(server.url(path)) == reason, path
    assert rejected["ftp://h/x.png"] == "bad_url"
    assert summary.num_samples == 4 and summary.rejections["duplicate"] == 1
    assert server.counts["/flaky.png"] == 2 and server.counts["/ratelimited.png"] == 2
    first, second = server.times["/ratelimited.png"]
    assert second - first >= 0.95  # Retry-After: 1 honoured although backoff_s is 0.05
    # One retry charged, then given up; a timeout while the host's window had
    # already been cut (here by the 429) is retried free, so at most one more.
    assert 2 <= server.counts["/slow.png"] <= 3
    assert server.counts["/loop/a"] == 1 and server.counts["/loop/b"] == 1
    assert server.counts["/img/ok.png"] == 1
    assert server.huge_bytes_sent < 20_000_000  # aborted early, not read to the end (~128 MB)
    assert server.counts["/robots.txt"] == 1
    samples = pq.read_table(out / "samples.parquet").to_pylist()
    assert {r["url_license"] for r in samples} == {"cc0"} and {r["license"] for r in samples} == {"unknown"}
    assert {r["class_name"] for r in samples} == {"a"}
    assert next(r for r in samples if r["url"] == server.url("/redirect/1"))["final_url"] == server.url("/img/later.png")


def test_private_network_refused_by_default(tmp_path: Path, server: WebServer) -> None:
    (tmp_path / "l.txt").write_text(server.url("/img/ok.png") + "\n" + server.url("/img/red.png", host="localhost") + "\n")
    summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}", allow_private_network=False, allow_empty=True))
    assert summary.num_samples == 0 and summary.rejections == {"private_address": 2}
    assert sum(server.counts.values()) == 0


def test_crawl_delay_paces_requests(tmp_path: Path, server: WebServer) -> None:
    # localhost's robots.txt says Crawl-delay: 0.3.
    paths = ["/img/ok.png", "/img/red.png", "/img/plain.png"]
    (tmp_path / "l.txt").write_text("".join(server.url(p, host="localhost") + "\n" for p in paths))
    import time

    t0 = time.perf_counter()
    summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}"))
    assert summary.num_samples == 3
    assert time.perf_counter() - t0 >= 0.6  # three requests at least 0.3 s apart


def test_resume_retries_only_failures(tmp_path: Path, server: WebServer) -> None:
    paths = ["/img/ok.png", "/img/red.png", "/img/plain.png"]
    (tmp_path / "l.txt").write_text("".join(server.url(p) + "\n" for p in paths))
    uri = f"urls:{tmp_path / 'l.txt'}"
    server.fail_paths.add("/img/red.png")
    first = build(_config(tmp_path, uri, {"retries": "0"}))
    assert first.num_samples == 2 and first.rejections == {"download_failed": 1}
    # Same command: up to date, nothing fetched.
    assert build(_config(tmp_path, uri, {"retries": "0"})).up_to_date
    # A build killed before publishing: the re-run takes every success from the cache.
    (tmp_path / "out" / "manifest.json").unlink()
    assert build(_config(tmp_path, uri, {"retries": "0"})).num_samples == 2
    assert server.counts["/img/ok.png"] == 1 and server.counts["/img/red.png"] == 2
    server.fail_paths.clear()
    again = build(_config(tmp_path, uri, {"retries": "0"}, retry_failed=True))
    assert again.num_samples == 3 and again.rejections == {}
    assert server.counts["/img/ok.png"] == 1 and server.counts["/img/plain.png"] == 1
    assert server.counts["/img/red.png"] == 3
    assert server.counts["/robots.txt"] == 3  # once per build that fetched
    # And the same command as at first now finds the dataset up to date.
    assert build(_config(tmp_path, uri, {"retries": "0"})).up_to_date
    assert server.counts["/robots.txt"] == 3


def test_cli_build_urls(tmp_path: Path, server: WebServer) -> None:
    (tmp_path / "l.txt").write_text(server.url("/img/ok.png") + "\n" + server.url("/missing.png") + "\n")
    out = tmp_path / "out"
    args = ["build", f"urls:{tmp_path / 'l.txt'}", "-o", str(out), "--size", "16", "--min-size", "8", "--executor", "serial"]
    refused = CliRunner().invoke(main, args)
    # Every URL refused: no sample kept is an error (exit 1) with the summary.
    assert refused.exit_code == 1 and "no sample kept (2 rejected: private_address 2)" in refused.output
    result = CliRunner().invoke(main, args + ["--allow-private-network", "--overwrite", "--web", "user_agent=testbot/1.0"])
    assert result.exit_code == 0, result.output
    assert "1 samples" in result.output and "rejected download_failed: 1" in result.output
    assert (out / ".cache" / "web").is_dir()
    # A 404 is a definitive answer: --retry-failed rebuilds from the cache without asking again.
    again = CliRunner().invoke(main, args + ["--allow-private-network", "--web", "user_agent=testbot/1.0", "--retry-failed"])
    assert again.exit_code == 0 and "1 samples" in again.output, again.output
    assert server.counts["/missing.png"] == 1 and server.counts["/img/ok.png"] == 1


def test_failing_host_is_given_up_not_hammered(tmp_path: Path, server: WebServer) -> None:
    paths = [f"/down/{i}.png" for i in range(8)]
    server.fail_paths.update(paths)
    (tmp_path / "l.txt").write_text("".join(server.url(p) + "\n" for p in paths))
    params = {"retries": "1", "backoff_s": "0.01", "host_concurrency": "1", "host_max_failures": "3"}
    summary = build(_config(tmp_path, f"urls:{tmp_path / 'l.txt'}", params, allow_empty=True))
    assert summary.rejections == {"download_failed": 8}
    assert sum(server.counts[p] for p in paths) == 3  # then the host is given up
    assert "given up" in (tmp_path / "out" / "rejected.jsonl").read_text()
