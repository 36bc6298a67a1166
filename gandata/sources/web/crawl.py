"""Page crawls: find the image URLs of gallery pages.

``extract_page`` reads one HTML page with the standard library's parser:
``<img src>``, ``srcset`` (largest candidate), lazy-loading attributes
(``data-src``, ``data-srcset``, ...), ``<picture><source>``, ``og:image``,
``<base href>``, ``<meta name="robots">`` and the page's links. ``crawl``
walks pages breadth-first from a start URL through the polite Fetcher,
on the same host by default, bounded by ``max_depth`` and ``max_pages``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from gandata.sources.web.fetch import Fetcher, noai_directives
from gandata.sources.web.guard import (
    UrlRefused,
    check_url,
    join_url,
    normalize_url,
    shown,
)
from gandata.sources.web.options import WebOptions
from gandata.sources.web.urls import UrlEntry

LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src")
LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
OG_IMAGE = ("og:image", "og:image:url", "og:image:secure_url")
# Links that point at files, not pages: never fetched as pages.
NOT_PAGES = re.compile(r"\.(jpe?g|png|gif|webp|bmp|tiff?|avif|ico|svg|pdf|zip|gz|tar|mp4|webm|mp3|css|js)$", re.I)


def largest_candidate(srcset: str) -> str | None:
    """The URL of the largest candidate of a srcset (by w, else x descriptor)."""
    best: tuple[float, str] | None = None
    for part in srcset.split(","):
        tokens = part.strip().split()
        if not tokens:
            continue
        url, size = tokens[0], 1.0
        if len(tokens) > 1:
            desc = tokens[1].lower()
            try:
                # w descriptors outrank any x descriptor.
                size = float(desc[:-1]) * (1e6 if desc.endswith("w") else 1.0) if desc[-1] in "wx" else 1.0
            except ValueError:
                size = 1.0
        if best is None or size > best[0]:
            best = (size, url)
    return best[1] if best else None


@dataclass
class PageContent:
    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    robots: list[str] = field(default_factory=list)
    base: str | None = None


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageContent()
        self._picture = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "").strip() for k, v in attrs}
        page = self.page
        if tag == "picture":
            self._picture += 1
        elif tag == "img":
            for name in ("src", *LAZY_SRC):
                if a.get(name):
                    page.images.append(a[name])
            for name in ("srcset", *LAZY_SRCSET):
                if a.get(name):
                    best = largest_candidate(a[name])
                    if best:
                        page.images.append(best)
        elif tag == "source" and self._picture:
            for name in ("srcset", *LAZY_SRCSET, "src"):
                if a.get(name):
                    best = largest_candidate(a[name])
                    if best:
                        page.images.append(best)
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            if key in OG_IMAGE and a.get("content"):
                page.images.append(a["content"])
            elif key == "robots" and a.get("content"):
                page.robots.append(a["content"])
        elif tag == "a" and a.get("href"):
            page.links.append(a["href"])
        elif tag == "base" and a.get("href") and page.base is None:
            page.base = a["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "picture" and self._picture:
            self._picture -= 1


def extract_page(html: str, page_url: str) -> PageContent:
    """Absolute image and link URLs of one page (``data:`` URIs dropped,
    fragments stripped, first occurrence kept)."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    raw = parser.page
    base = join_url(page_url, raw.base) if raw.base else page_url
    try:
        check_url(base)
    except UrlRefused:
        base = page_url  # a malformed <base href> is ignored, as browsers do
    out = PageContent(robots=raw.robots, base=base)
    for source, target in ((raw.images, out.images), (raw.links, out.links)):
        seen: set[str] = set()
        for ref in source:
            if ref.lower().startswith(("data:", "javascript:", "mailto:", "about:", "blob:")):
                continue
            # A malformed reference stays as it is: check_url refuses it later,
            # as a rejection naming it.
            url = normalize_url(join_url(base, ref))
            if url not in seen:
                seen.add(url)
                target.append(url)
    return out


def apply_label_rule(rule: str | None, image_url: str, page_url: str | None, listed: str | None) -> str | None:
    """The label of an image under a rule (see docs/WEB.md); None = unlabeled."""
    if rule is None:
        return listed
    kind, _, arg = rule.partition(":")
    if kind == "fixed":
        return arg or None
    if kind == "column":
        return listed
    if kind == "page":
        if page_url is None:
            return None
        path = urlsplit(page_url).path.strip("/")
        return unquote(str(PurePosixPath(path).with_suffix(""))) if path else urlsplit(page_url).netloc
    if kind == "segment":
        segments = [s for s in urlsplit(page_url or image_url).path.split("/") if s]
        index = int(arg)
        return unquote(segments[index]) if -len(segments) <= index < len(segments) else None
    if kind == "regex":
        for target in (image_url, page_url):
            if target is None:
                continue
            m = re.search(arg, target)
            if m:
                return m.group(1) if m.groups() else m.group(0)
        return None
    return None


@dataclass
class CrawlResult:
    images: list[UrlEntry]
    pages: int
    page_failures: list[UrlEntry]


def _follow(url: str, start_host: str, o: WebOptions) -> bool:
    parts = urlsplit(url)  # callers pass URLs check_url accepted
    if parts.scheme not in ("http", "https") or NOT_PAGES.search(parts.path):
        return False
    if o.same_host and parts.netloc.lower() != start_host:
        return False
    if o.include and not any(re.search(p, url) for p in o.include):
        return False
    return not any(re.search(p, url) for p in o.exclude)


async def crawl(start: str, o: WebOptions, fetcher: Fetcher) -> CrawlResult:
    """Breadth-first crawl from ``start``. Pages of one depth are fetched
    concurrently and processed in discovery order, so the result is
    deterministic for the same site."""
    start = normalize_url(start)
    start_host = urlsplit(start).netloc.lower()
    seen_pages = {start}
    seen_images: set[str] = set()
    level = [start]
    depth = 0
    pages = 0
    images: list[UrlEntry] = []
    failures: list[UrlEntry] = []
    while level and pages < o.max_pages:
        level = level[: o.max_pages - pages]
        results = await asyncio.gather(*(fetcher.fetch(url, image=False) for url in level))
        pages += len(level)
        following: list[str] = []
        for url, result in zip(level, results):
            if not result.ok:
                failures.append(UrlEntry(url=url, page_url=url, rejected=(result.reason or "download_failed", f"page {result.detail}")))
                continue
            ctype = (result.content_type or "").lower()
            if "html" not in ctype and ctype:
                continue
            charset = re.search(r"charset=([\w.-]+)", ctype)
            try:
                html = (result.body or b"").decode(charset.group(1) if charset else "utf-8", "replace")
            except LookupError:
                html = (result.body or b"").decode("utf-8", "replace")
            content = extract_page(html, result.final_url or url)
            tags = noai_directives(content.robots + [result.headers.get("x-robots-tag", "")], o.noai)
            for image_url in content.images:
                if image_url in seen_images:
                    continue
                seen_images.add(image_url)
                images.append(UrlEntry(url=image_url, page_url=url, noai=", ".join(tags) or None))
            if o.max_depth is None or depth < o.max_depth:
                for link in content.links:
                    if link in seen_pages:
                        continue
                    try:
                        check_url(link)
                    except UrlRefused as exc:
                        seen_pages.add(link)
                        if link.lower().startswith(("http:", "https:")):  # other schemes are not links to pages
                            failures.append(UrlEntry(url=link, page_url=url, rejected=(
                                "bad_url", f"link on page {shown(url)} not followed: {exc.detail}")))
                        continue
                    if _follow(link, start_host, o):
                        seen_pages.add(link)
                        following.append(link)
        level = following
        depth += 1
    return CrawlResult(images=images, pages=pages, page_failures=failures)
