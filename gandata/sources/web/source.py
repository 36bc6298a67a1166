"""The ``urls:`` and ``crawl:`` sources.

The parent process (``partitions()``) reads the list or runs the crawl,
de-duplicates the URLs, fetches each host's robots.txt once and splits the
URLs into small batches. Each worker (``read()``) runs an asyncio loop in a
thread that downloads its batch concurrently while the worker decodes what
has already arrived, so downloads never wait behind decoding.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.base import Partition, SourceContext
from gandata.sources.web.cache import DownloadCache
from gandata.sources.web.crawl import apply_label_rule, crawl
from gandata.sources.web.fetch import Fetcher, FetchResult, host_of, origin_of
from gandata.sources.web.guard import UrlRefused, check_url, normalize_url
from gandata.sources.web.hosts import HostFigures, host_file_name, read_host_figures
from gandata.sources.web.options import WebOptions, parse_options, split_uri
from gandata.sources.web.optout import check_response, check_sites
from gandata.sources.web.urls import UrlEntry, read_url_list

# Outcomes that depend on this run's policy (flags, robots.txt fetched anew
# each build), not on a server's answer about the URL: never remembered.
NOT_CACHED = {"private_address", "bad_url", "robots_disallowed", "duplicate"}


@dataclass(frozen=True)
class WebBatch:
    """One partition's URLs and the robots.txt texts of their hosts."""

    entries: tuple[UrlEntry, ...]
    robots: tuple[tuple[str, str], ...]


class WebSource:
    """Shared by ``urls:`` and ``crawl:``; subclasses find the URLs."""

    def __init__(self, uri: str, target: str, options: WebOptions, ctx: SourceContext) -> None:
        self.uri = uri
        self.target = target
        self.options = options
        self.allow_private = ctx.allow_private_network
        self.cache_dir = ctx.cache_dir
        self.seed = ctx.seed
        self._partitions: list[Partition] | None = None
        self._hosts: list[str] = []

    # ---- parent side --------------------------------------------------------------

    def _discover(self, fetcher: Fetcher) -> Any:
        raise NotImplementedError

    def partitions(self) -> Sequence[Partition]:
        if self._partitions is None:
            self._partitions = asyncio.run(self._plan())
        return self._partitions

    async def _plan(self) -> list[Partition]:
        lock_dir = str(Path(self.cache_dir) / "hosts") if self.cache_dir else None
        async with Fetcher(self.options, allow_private_network=self.allow_private, lock_dir=lock_dir, seed=self.seed) as fetcher:
            entries = _dedup(await self._discover(fetcher))
            origins = sorted({origin_of(e.url) for e in entries if e.rejected is None and e.noai is None})
            self._hosts = sorted({host_of(o) for o in origins})
            for host in self._hosts:
                # Each build learns its hosts anew: start low, fresh figures.
                fetcher.hosts.reset(host)
            if self.options.robots:
                # Once per host, before any request to it; workers reuse the texts.
                await asyncio.gather(*(fetcher.robots(o) for o in origins))
            # TDMRep's tdmrep.json and ai.txt, once per host (optout.py).
            entries = await check_sites(entries, fetcher, origins, self.options)
            texts = fetcher.robots_texts
        size = self.options.batch
        parts = []
        for index, start in enumerate(range(0, len(entries), size)):
            chunk = tuple(entries[start:start + size])
            wanted = {origin_of(e.url) for e in chunk if e.rejected is None and e.noai is None}
            robots = tuple(sorted((o, texts[o]) for o in wanted if o in texts))
            # num_inputs: the ingest progress counts images against a known total.
            parts.append(Partition(index=index, items=(WebBatch(chunk, robots),), num_inputs=len(chunk),
                                   description=f"{len(chunk)} URLs from line/row {chunk[0].line or start + 1}"))
        return parts

    def __getstate__(self) -> dict[str, Any]:
        # Workers get their batch in the partition; shipping every partition
        # with every task would make pickling quadratic in the list's size.
        return {**self.__dict__, "_partitions": None}

    def class_names(self) -> list[str] | None:
        return None

    def host_figures(self) -> list[HostFigures]:
        """Per-host figures of this build so far (requests, retries, final
        concurrency, median latency, images downloaded), summed over every
        worker process; empty before ``partitions()`` or without a cache
        directory. Cheap enough to poll for a progress display."""
        if not self.cache_dir:
            return []
        wanted = {host_file_name(h) for h in self._hosts}
        return [f for f in read_host_figures(Path(self.cache_dir) / "hosts") if host_file_name(f.host) in wanted]

    def _fingerprint(self, content: str) -> str:
        # The download cache's state is not part of it: a dataset built with
        # failures stays "up to date" until --retry-failed asks for a rebuild.
        data = {"uri": self.uri, "options": dataclasses.asdict(self.options), "private": self.allow_private, "content": content}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]

    # ---- worker side --------------------------------------------------------------

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        batch: WebBatch = partition.items[0]
        yield from download_batch(batch, self.options, allow_private=self.allow_private, cache_dir=self.cache_dir,
                                  seed=self.seed + partition.index, uri=self.uri)


def _dedup(entries: list[UrlEntry]) -> list[UrlEntry]:
    """Normalize URLs, refuse non-http(s) ones, and mark repeats (first kept)."""
    first: dict[str, UrlEntry] = {}
    out = []
    for entry in entries:
        if entry.rejected is not None:
            out.append(entry)
            continue
        url = normalize_url(entry.url)
        try:
            check_url(url)
        except UrlRefused as exc:
            out.append(dataclasses.replace(entry, url=url, rejected=(exc.reason, exc.detail)))
            continue
        if url in first:
            where = f"line {first[url].line}" if first[url].line else f"page {first[url].page_url}"
            out.append(dataclasses.replace(entry, url=url, rejected=("duplicate", f"{url}: repeated URL (first at {where}); downloaded once")))
            continue
        entry = dataclasses.replace(entry, url=url)
        first[url] = entry
        out.append(entry)
    return out


class UrlListSource(WebSource):
    """``urls:FILE``: a txt/csv/tsv/jsonl/parquet list of image URLs."""

    def _discover(self, fetcher: Fetcher) -> Any:
        async def read() -> list[UrlEntry]:
            column = self.options.label.partition(":")[2] if (self.options.label or "").startswith("column:") else "label"
            return read_url_list(self.target, column)
        return read()

    def fingerprint(self) -> str:
        try:
            st = os.stat(self.target)
        except OSError as exc:
            raise SourceError(f"{self.uri}: cannot read {self.target}: {exc.strerror or exc}") from None
        return self._fingerprint(f"{st.st_size}:{st.st_mtime_ns}")


class CrawlSource(WebSource):
    """``crawl:URL``: images found on pages reached from URL."""

    def _discover(self, fetcher: Fetcher) -> Any:
        async def run() -> list[UrlEntry]:
            result = await crawl(self.target, self.options, fetcher)
            return result.page_failures + result.images
        return run()

    def fingerprint(self) -> str:
        # A site has no cheap content fingerprint: the URL and options name it.
        return self._fingerprint("")


def open_urls(uri: str, spec: SourceSpec, ctx: SourceContext) -> UrlListSource:
    """Factory for ``urls:FILE[?option=value&...]``."""
    target, query = split_uri(uri)
    if not target:
        raise SourceError(f"{uri}: expected urls:FILE")
    source = UrlListSource(uri, target, parse_options(uri, dict(spec.params or {}), query), ctx)
    if not Path(target).is_file():
        raise SourceError(f"{uri}: no such file {target}")
    return source


def open_crawl(uri: str, spec: SourceSpec, ctx: SourceContext) -> CrawlSource:
    """Factory for ``crawl:URL[#option=value&...]``."""
    target, query = split_uri(uri)
    try:
        check_url(target)
    except UrlRefused as exc:
        raise SourceError(f"{uri}: {exc.detail}") from None
    return CrawlSource(uri, target, parse_options(uri, dict(spec.params or {}), query), ctx)


# ---- downloading one batch (worker) -----------------------------------------------------


def download_batch(
    batch: WebBatch, options: WebOptions, *, allow_private: bool, cache_dir: str | None, seed: int, uri: str,
) -> Iterator[Sample | Rejection]:
    """Yield one Sample or Rejection per entry, in entry order, while later
    entries are still downloading in a background event loop."""
    cache = DownloadCache(cache_dir)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gandata-web", daemon=True)
    thread.start()
    lock_dir = str(Path(cache_dir) / "hosts") if cache_dir else None

    async def open_fetcher() -> Fetcher:
        fetcher = Fetcher(options, allow_private_network=allow_private, lock_dir=lock_dir,
                          robots_texts=dict(batch.robots), seed=seed)
        return await fetcher.__aenter__()

    fetcher = asyncio.run_coroutine_threadsafe(open_fetcher(), loop).result()
    pending: list[Any] = []
    try:
        for entry in batch.entries:
            known = _known_outcome(entry, cache)
            if known is None:
                known = asyncio.run_coroutine_threadsafe(fetcher.fetch(entry.url), loop)
            pending.append(known)
        for entry, outcome in zip(batch.entries, pending):
            if isinstance(outcome, concurrent.futures.Future):
                outcome = _remember(check_response(outcome.result(), options.optouts), cache)
            yield _to_record(entry, outcome, options, uri)
    finally:
        for outcome in pending:
            if isinstance(outcome, concurrent.futures.Future):
                outcome.cancel()
        asyncio.run_coroutine_threadsafe(fetcher.__aexit__(None, None, None), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _known_outcome(entry: UrlEntry, cache: DownloadCache) -> FetchResult | None:
    """The outcome without a request: refused in the parent, noai page, or cached."""
    if entry.rejected is not None:
        return FetchResult(entry.url, reason=entry.rejected[0], detail=entry.rejected[1])
    if entry.noai is not None:
        return FetchResult(entry.url, reason="noai", detail=f"{entry.url}: page {entry.page_url} has meta robots {entry.noai}")
    hit = cache.get(entry.url)
    if hit is None:
        return None
    meta, body = hit
    if meta["outcome"] == "ok" and body is not None:
        return FetchResult(entry.url, final_url=meta.get("final_url", entry.url), status=meta.get("status"), body=body,
                           fetched_at=meta.get("fetched_at", ""), headers={"x-gandata-cached": "1"})
    if meta["outcome"] == "rejected":
        return FetchResult(entry.url, reason=meta["reason"], detail=meta["detail"])
    return None


def _remember(result: FetchResult, cache: DownloadCache) -> FetchResult:
    if result.ok and result.body is not None:
        cache.put_ok(result.url, {"final_url": result.final_url, "status": result.status, "fetched_at": result.fetched_at}, result.body)
    elif result.reason is not None and result.reason not in NOT_CACHED:
        cache.put_rejected(result.url, result.reason, result.detail, retryable=result.retryable)
    return result


def _to_record(entry: UrlEntry, result: FetchResult, options: WebOptions, uri: str) -> Sample | Rejection:
    if not result.ok or result.body is None:
        return Rejection(key=entry.url, locator=entry.url, reason=result.reason or "download_failed",
                         detail=result.detail or f"{entry.url}: no body", source=uri)
    provenance: dict[str, Any] = {name: value for name, value in entry.extra}
    provenance.update({
        "url": entry.url,
        "page_url": entry.page_url,
        "final_url": result.final_url or entry.url,
        "http_status": result.status,
        "fetched_at": result.fetched_at,
        "content_sha256": hashlib.sha256(result.body).hexdigest(),
    })
    label = apply_label_rule(options.label, entry.url, entry.page_url, entry.label)
    return Sample(key=entry.url, locator=entry.url, label=label, data=result.body, provenance=provenance)
