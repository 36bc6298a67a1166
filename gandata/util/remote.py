"""Object storage through fsspec: URLs for outputs, datasets and sources.

A path with a protocol other than ``file`` (``s3://bucket/key``,
``gs://...``, ``memory://...``, any fsspec URL) is *remote*; everything else
is a local path (``file://`` URLs are turned into one). Credentials and
endpoints come from fsspec's usual configuration: the protocol's own
environment (``AWS_*`` for s3fs) or ``FSSPEC_<PROTOCOL>_<OPTION>`` variables,
e.g. ``FSSPEC_S3_ENDPOINT_URL`` for a MinIO or other S3-compatible server.

Object stores have no atomic rename of a folder, so a dataset is published
as: delete the old manifest, replace the data objects, upload the manifest
under a temporary key, then copy it to ``manifest.json`` and delete the
temporary key. A reader therefore sees either no manifest or a manifest
whose every shard is in place.
"""

from __future__ import annotations

import os
from typing import Any

from gandata.errors import ConfigError, FormatError


def protocol_of(path: str) -> str | None:
    """The URL protocol of ``path`` (``"s3"``), or None for a plain path."""
    head, sep, _ = str(path).partition("://")
    if not sep or not head or "/" in head:
        return None
    return head.lower()


def is_remote(path: str | os.PathLike[str]) -> bool:
    """True for a URL that fsspec must open (any protocol but ``file``)."""
    proto = protocol_of(str(path))
    return proto is not None and proto not in ("file", "local")


def local_path(path: str | os.PathLike[str]) -> str:
    """A ``file://`` URL as a plain path; other paths unchanged."""
    text = str(path)
    if protocol_of(text) in ("file", "local"):
        return text.split("://", 1)[1]
    return text


def filesystem(url: str, option: str = "--output") -> tuple[Any, str]:
    """``(fsspec filesystem, path inside it)`` for a URL; ConfigError naming
    ``option`` when fsspec or the protocol's package is missing."""
    try:
        import fsspec
    except ImportError:
        raise ConfigError(f"{option}: {url} needs fsspec (pip install 'gandata[s3]')") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{option}: cannot open {url}: {exc}") from None
    # fsspec shares one instance per URL options; its listing cache may be
    # stale when another process (a worker, another build) wrote since.
    fs.invalidate_cache()
    return fs, path.rstrip("/")


def join(url: str, *parts: str) -> str:
    """``url/part/...`` without doubled slashes."""
    return "/".join([url.rstrip("/"), *parts])


def read_bytes(url: str, option: str = "dataset") -> bytes:
    """The whole object at ``url``; FormatError when it cannot be read."""
    fs, path = filesystem(url, option)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise FormatError(f"{url}: missing") from None
    except OSError as exc:
        raise FormatError(f"{url}: cannot read it: {exc}") from None


def list_names(url: str) -> list[str]:
    """Names directly under ``url`` (empty when it does not exist)."""
    fs, path = filesystem(url)
    try:
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


