"""Readers for URL lists: txt (one URL a line), csv/tsv, jsonl and parquet
with a ``url`` column, an optional ``label`` column and any other columns
kept as provenance; gzip-compressed files (``.gz``) too."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from gandata.errors import SourceError


@dataclass(frozen=True)
class UrlEntry:
    """One URL to download, with what the list said about it."""

    url: str
    label: str | None = None
    page_url: str | None = None
    # Extra columns of the list (kept as provenance), as sorted (name, value) pairs.
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    # The line/row it came from (1-based), for messages.
    line: int = 0
    # Set when the page that listed it forbids AI use (meta robots noai).
    noai: str | None = None
    # (reason, detail) when the parent already knows it will not be fetched
    # (a repeated URL, a page that failed during a crawl).
    rejected: tuple[str, str] | None = None


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def list_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in ("csv", "tsv", "jsonl", "parquet", "txt"):
        if name.endswith("." + suffix) or (suffix == "jsonl" and name.endswith(".ndjson")):
            return suffix
    return "txt"


def read_url_list(path: str, label_column: str = "label") -> list[UrlEntry]:
    """Every entry of the list in file order (not yet de-duplicated).
    SourceError names the file when it cannot be read or lacks a url column."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"urls:{path}: no such file")
    fmt = list_format(p)
    try:
        rows = list(_rows(p, fmt))
    except SourceError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"urls:{path}: cannot read the {fmt} list: {exc}") from None
    entries = []
    for line, row in rows:
        url = row.pop("url", None)
        if url is None or str(url).strip() == "":
            continue
        label = row.pop(label_column, None)
        extra = tuple(sorted((str(k), v) for k, v in row.items() if k))
        entries.append(UrlEntry(url=str(url).strip(), label=None if label in (None, "") else str(label), extra=extra, line=line))
    return entries


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "url" not in table.column_names:
            raise SourceError(f"urls:{path}: no 'url' column (columns: {', '.join(table.column_names)})")
        for i, row in enumerate(table.to_pylist(), start=1):
            yield i, row
        return
    with _open_text(path) as fh:
        if fmt == "txt":
            for i, line in enumerate(fh, start=1):
                text = line.strip()
                if text and not text.startswith("#"):
                    yield i, {"url": text}
        elif fmt == "jsonl":
            for i, line in enumerate(fh, start=1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise SourceError(f"urls:{path}: line {i} is not a JSON object")
                    yield i, row
        else:
            reader = csv.DictReader(fh, delimiter="\t" if fmt == "tsv" else ",")
            if reader.fieldnames is None or "url" not in reader.fieldnames:
                raise SourceError(f"urls:{path}: no 'url' column in the header (got {reader.fieldnames})")
            for i, row in enumerate(reader, start=2):
                yield i, dict(row)
