"""Web options: one frozen dataclass, parsed from a source's params and URI query."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Mapping
from urllib.parse import parse_qsl

from gandata import __version__
from gandata.errors import SourceError

DEFAULT_USER_AGENT = f"gandata/{__version__} (image dataset builder; honours robots.txt and noai)"


@dataclass(frozen=True)
class WebOptions:
    """Everything a web source needs to know about how to fetch.

    ``concurrency`` bounds the requests in flight per worker process;
    ``host_concurrency`` bounds them per host across all worker processes:
    the ceiling of the host's adaptive window (``hosts.HostController``).
    """

    user_agent: str = DEFAULT_USER_AGENT
    concurrency: int = 32
    host_concurrency: int = 4
    # Requests per second per host; 0 = no limit (robots.txt Crawl-delay still applies).
    host_rate: float = 0.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 60.0
    # Consecutive failures (no success between) after which a host is given up for the build.
    host_max_failures: int = 20
    # Seconds a host may keep failing (no success) while its URLs are retried before it is given up.
    host_retry_budget_s: float = 120.0
    # Adapt each host's concurrency to how it copes (start low, AIMD); False:
    # always host_concurrency in flight.
    adaptive: bool = True
    max_redirects: int = 5
    max_bytes: int = 20_000_000
    noai: tuple[str, ...] = ("noai", "noimageai")
    # Opt-out protocols honoured besides noai (optout.py): tdmrep, ai.txt.
    optouts: tuple[str, ...] = ("tdmrep", "ai.txt")
    robots: bool = True
    # Crawl only.
    max_depth: int | None = None
    max_pages: int = 1000
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    same_host: bool = True
    # Label rule: segment:N, regex:PATTERN, page, fixed:NAME, column:NAME (lists); None = unlabeled.
    label: str | None = None
    # URLs per ingest partition.
    batch: int = 64


_INT = {"concurrency", "host_concurrency", "retries", "host_max_failures", "max_redirects", "max_bytes", "max_pages", "batch"}
_FLOAT = {"host_rate", "connect_timeout_s", "read_timeout_s", "backoff_s", "max_backoff_s", "host_retry_budget_s"}
_LIST = {"noai", "include", "exclude", "optouts"}
_BOOL = {"robots", "same_host", "adaptive"}
# Short aliases accepted in URIs.
_ALIASES = {"timeout": "read_timeout_s", "connect_timeout": "connect_timeout_s", "read_timeout": "read_timeout_s",
            "max_size": "max_bytes", "ua": "user_agent", "depth": "max_depth", "pages": "max_pages",
            "backoff": "backoff_s", "max_backoff": "max_backoff_s"}
NAMES = {f.name for f in fields(WebOptions)}


def split_uri(uri: str) -> tuple[str, dict[str, str]]:
    """``scheme:TARGET?k=v&...`` -> (TARGET, query params)."""
    _, _, rest = uri.partition(":")
    # crawl:https://host/?a=b has its own query; options then come after '#'.
    if rest.startswith(("http://", "https://")):
        target, _, query = rest.partition("#")
    else:
        target, _, query = rest.partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise SourceError(f"{uri}: cannot parse the options {query!r} (expected key=value&key=value)") from None
    return target, dict(pairs)


def parse_options(uri: str, params: Mapping[str, Any], query: Mapping[str, str]) -> WebOptions:
    """Merge ``params`` (config/flags) and ``query`` (the URI wins) into WebOptions;
    SourceError names the URI and the bad option."""
    merged: dict[str, Any] = {}
    for source in (params, query):
        for key, value in source.items():
            name = _ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
            if name not in NAMES:
                if source is query:
                    raise SourceError(f"{uri}: unknown web option {key!r} (known: {', '.join(sorted(NAMES))})")
                continue
            merged[name] = value
    out: dict[str, Any] = {}
    for name, value in merged.items():
        try:
            out[name] = _convert(name, value)
        except ValueError as exc:
            raise SourceError(f"{uri}: option {name}={value!r}: {exc}") from None
    opts = WebOptions(**out)
    _validate(uri, opts)
    return opts


def _convert(name: str, value: Any) -> Any:
    if name == "max_depth":
        return None if str(value).lower() in ("", "none", "inf") else int(value)
    if name == "label":
        return None if value in ("", None) else str(value)
    if name in _INT:
        return int(value)
    if name in _FLOAT:
        return float(value)
    if name in _LIST:
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        return tuple(v.strip() for v in str(value).split(",") if v.strip())
    if name in _BOOL:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    return str(value)


def _validate(uri: str, o: WebOptions) -> None:
    for name in ("concurrency", "host_concurrency", "max_bytes", "max_pages", "batch"):
        if getattr(o, name) < 1:
            raise SourceError(f"{uri}: option {name}={getattr(o, name)} must be at least 1")
    for name in ("retries", "max_redirects", "host_rate", "backoff_s", "max_backoff_s", "host_max_failures",
                 "host_retry_budget_s"):
        if getattr(o, name) < 0:
            raise SourceError(f"{uri}: option {name}={getattr(o, name)} must not be negative")
    if o.connect_timeout_s <= 0 or o.read_timeout_s <= 0:
        raise SourceError(f"{uri}: timeouts must be positive")
    unknown = [name for name in o.optouts if name not in ("tdmrep", "ai.txt")]
    if unknown:
        raise SourceError(f"{uri}: optouts={','.join(unknown)}: known opt-outs are tdmrep and ai.txt")
    for pattern in o.include + o.exclude:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SourceError(f"{uri}: include/exclude pattern {pattern!r}: {exc}") from None
    if o.label is not None:
        kind, _, arg = o.label.partition(":")
        if kind not in ("segment", "regex", "page", "fixed", "column"):
            raise SourceError(f"{uri}: label={o.label!r}: use segment:N, regex:PATTERN, page, fixed:NAME or column:NAME")
        if kind == "segment" and not arg.lstrip("-").isdigit():
            raise SourceError(f"{uri}: label={o.label!r}: segment needs an index, e.g. segment:1")
        if kind == "regex":
            try:
                re.compile(arg)
            except re.error as exc:
                raise SourceError(f"{uri}: label={o.label!r}: {exc}") from None
