"""Readers for URL lists: txt (one URL a line), csv/tsv, jsonl and parquet
with a ``url`` column, an optional ``label`` column and any other columns
kept as provenance; gzip-compressed files (``.gz``) too."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

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


# A line (a txt/jsonl line, a CSV record) longer than this is rejected
# unread: a list is untrusted input, and one 2 GB line must not cost 2 GB.
MAX_LINE_BYTES = 64 * 1024
# List columns with these names would overwrite what gandata itself records
# in samples.parquet (docs/FORMAT.md): they are kept under the name with
# RESERVED_PREFIX in front (``synthetic`` -> ``url_synthetic``), as are
# names starting with ``synth_`` (a generator's provenance).
RESERVED_COLUMNS = frozenset({
    # samples.parquet's own columns
    "shard", "row", "key", "label", "class_name", "source", "locator", "split", "derived_from", "augmentation",
    "weight", "content_hash", "original_width", "original_height",
    # provenance every source records, and the synthetic fill's
    "origin", "license", "synthetic",
    # what a web source records about each download
    "url", "page_url", "final_url", "http_status", "fetched_at", "content_sha256",
})
RESERVED_PREFIX = "url_"


def is_reserved(name: str) -> bool:
    """Whether a list column named ``name`` would overwrite a column gandata
    writes (case-insensitively, so that no reader folding case sees two)."""
    lower = name.lower()
    return lower in RESERVED_COLUMNS or lower.startswith(("synth_", "provenance_"))


def provenance_columns(row: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A list row's extra columns as sorted (name, value) pairs, reserved
    names prefixed until they collide with nothing (``url_origin`` in the
    list too: ``origin`` becomes ``url_url_origin``)."""
    names = {str(k) for k in row if k}
    out: dict[str, Any] = {}
    for key, value in row.items():
        if not key:
            continue
        name = str(key)
        if is_reserved(name):
            name = RESERVED_PREFIX + name
            while name in names or name in out or is_reserved(name):
                name = RESERVED_PREFIX + name
        out[name] = value
    return tuple(sorted(out.items()))


def list_format(path: Path) -> str:
    """The list's format from its name: csv, tsv, jsonl, parquet or txt."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in ("csv", "tsv", "jsonl", "parquet", "txt"):
        if name.endswith("." + suffix) or (suffix == "jsonl" and name.endswith(".ndjson")):
            return suffix
    return "txt"


def read_url_list(path: str, label_column: str = "label") -> list[UrlEntry]:
    """Every entry of the list in file order (not yet de-duplicated)."""
    return list(iter_url_list(path, label_column))


def iter_url_list(path: str, label_column: str = "label") -> Iterator[UrlEntry]:
    """The list's entries in file order, read line by line: a line that
    cannot be used (not JSON, no URL, over MAX_LINE_BYTES, not UTF-8) is an
    entry rejected as ``bad_url`` with a detail naming the line, never a
    refusal of the list. SourceError names the file when the list as a whole
    cannot be read (missing, no url column, a broken gzip or Parquet file)."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"urls:{path}: no such file")
    fmt = list_format(p)
    try:
        for line, row in _rows(p, fmt):
            if isinstance(row, str):
                yield _bad(path, line, row)
                continue
            yield _entry(path, line, row, label_column)
    except SourceError:
        raise
    except (OSError, EOFError, ValueError, csv.Error) as exc:
        # A broken gzip stream or Parquet file: the list as a whole is unusable.
        raise SourceError(f"urls:{path}: cannot read the {fmt} list: {exc}") from None


def _bad(path: str, line: int, problem: str) -> UrlEntry:
    where = f"{path}:{line}"
    return UrlEntry(url=where, line=line, rejected=("bad_url", f"urls:{path} line {line}: {problem}"))


def _entry(path: str, line: int, row: dict[str, Any], label_column: str) -> UrlEntry:
    url = row.pop("url", None)
    if url is None or (isinstance(url, str) and url.strip() == ""):
        return _bad(path, line, "no url")
    if not isinstance(url, str):
        return _bad(path, line, f"the url is a {type(url).__name__}, not a string")
    label = row.pop(label_column, None)
    if label is not None and (isinstance(label, bool) or not isinstance(label, (str, int))):
        return _bad(path, line, f"the {label_column} is a {type(label).__name__}, not a string")
    return UrlEntry(url=url.strip(), label=None if label in (None, "") else str(label), extra=provenance_columns(row), line=line)


def _lines(fh: BinaryIO) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None, problem) of each line of a binary file,
    each read with at most MAX_LINE_BYTES + 1 bytes in memory."""
    number = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line unread
                raw = fh.readline(1 << 16)
            yield number, None, f"line longer than {MAX_LINE_BYTES} bytes (not read)"
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield number, raw.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 ({exc.reason} at byte {exc.start})"


def _open_binary(path: Path) -> BinaryIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, row) for each usable line, (line, problem) for each bad one."""
    if fmt == "parquet":
        yield from _parquet_rows(path)
        return
    with _open_binary(path) as fh:
        if fmt == "txt":
            for number, text, problem in _lines(fh):
                if text is None:
                    yield number, problem
                elif text.strip() and not text.strip().startswith("#"):
                    yield number, {"url": text.strip()}
        elif fmt == "jsonl":
            for number, text, problem in _lines(fh):
                if text is None:
                    yield number, problem
                elif text.strip():
                    try:
                        row = json.loads(text)
                    except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
                        yield number, f"not JSON ({type(exc).__name__}: {str(exc)[:200]})"
                        continue
                    yield number, row if isinstance(row, dict) else f"a JSON {type(row).__name__}, not an object"
        else:
            yield from _csv_rows(path, fh, "\t" if fmt == "tsv" else ",")


def _csv_rows(path: Path, fh: BinaryIO, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    # Physical lines go to the csv module one at a time (a quoted field may
    # span several); a bad one reaches it as an empty line, and the record
    # it belonged to is rejected by its number.
    bad: dict[int, str] = {}

    def texts() -> Iterator[str]:
        for number, text, problem in _lines(fh):
            if text is None:
                bad[number] = problem
                yield "\n"
            else:
                yield text

    reader = csv.reader(texts(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        header = []
    if bad:
        raise SourceError(f"urls:{path}: the header line is unusable: {next(iter(bad.values()))}")
    if "url" not in header:
        raise SourceError(f"urls:{path}: no 'url' column in the header (got {header or None})")
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"not a CSV record ({exc})"
            start = reader.line_num + 1
            continue
        lines = range(start, reader.line_num + 1)
        problem = next((bad.pop(n) for n in lines if n in bad), None)
        number, start = start, reader.line_num + 1
        if problem is not None:
            yield number, problem
        elif fields:
            # Fields beyond the header are dropped, missing ones absent (csv.DictReader's way).
            yield number, dict(zip(header, fields))


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    if "url" not in names:
        raise SourceError(f"urls:{path}: no 'url' column (columns: {', '.join(names)})")
    number = 0
    # Row batches, not the whole table: memory grows with a batch.
    for batch in file.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            url = row.get("url")
            if isinstance(url, str) and len(url.encode("utf-8", "replace")) > MAX_LINE_BYTES:
                yield number, f"url longer than {MAX_LINE_BYTES} bytes"
            else:
                yield number, row
