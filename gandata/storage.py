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

import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable

from gandata.errors import BuildError, ConfigError, FormatError
from gandata.manifest import MANIFEST_FILE, REJECTED_FILE, SAMPLES_FILE, SHARDS_DIR

# (phase, done, total), as the pipeline reports progress.
ProgressFn = Callable[[str, int, int], None]


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


def read_remote_manifest_json(root: str) -> dict[str, Any] | None:
    """The parsed manifest at ``root/manifest.json``, None when there is none."""
    fs, path = filesystem(root)
    try:
        data = fs.cat_file(f"{path}/{MANIFEST_FILE}")
    except FileNotFoundError:
        return None
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{join(root, MANIFEST_FILE)}: not valid JSON: {exc}") from None
    return parsed if isinstance(parsed, dict) else {}


def list_names(url: str) -> list[str]:
    """Names directly under ``url`` (empty when it does not exist)."""
    fs, path = filesystem(url)
    try:
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def publish_remote(local_out: Path, url: str, manifest: dict[str, Any], progress: ProgressFn | None = None) -> None:
    """Upload a dataset built in ``local_out`` to ``url``, the manifest last.

    Order: (1) delete the old manifest, so no manifest ever points at shards
    being replaced; (2) delete old shards; (3) upload shards, samples.parquet,
    rejected.jsonl; (4) upload the manifest to a temporary key and copy it
    to manifest.json (one PUT/copy: readers never see a partial manifest);
    (5) delete the temporary key. Interrupted anywhere before (4), the URL
    holds no manifest, and re-running the build uploads again.
    """
    report = progress or (lambda phase, done, total: None)
    fs, root = filesystem(url)
    try:
        manifest_key = f"{root}/{MANIFEST_FILE}"
        if fs.exists(manifest_key):
            fs.rm_file(manifest_key)
        shards_key = f"{root}/{SHARDS_DIR}"
        if fs.exists(shards_key):
            fs.rm(shards_key, recursive=True)
        files = sorted((local_out / SHARDS_DIR).iterdir()) + [local_out / SAMPLES_FILE, local_out / REJECTED_FILE]
        report("upload", 0, len(files) + 1)
        for done, file in enumerate(files, start=1):
            rel = file.relative_to(local_out).as_posix()
            fs.put_file(str(file), f"{root}/{rel}")
            report("upload", done, len(files) + 1)
        tmp_key = f"{root}/.tmp-{MANIFEST_FILE}-{uuid.uuid4().hex}"
        fs.pipe_file(tmp_key, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
        fs.copy(tmp_key, manifest_key)
        fs.rm_file(tmp_key)
        report("upload", len(files) + 1, len(files) + 1)
    except OSError as exc:
        raise BuildError(f"--output: could not publish the dataset to {url}: {exc}") from None


def download_dataset(url: str, local: Path) -> None:
    """Copy the dataset at ``url`` (manifest, shards, sample index,
    rejections) into the local folder ``local``, for checks that read
    every byte anyway (``gandata verify``)."""
    fs, root = filesystem(url, option="dataset")
    local.mkdir(parents=True, exist_ok=True)
    try:
        for key in fs.find(root):
            rel = key[len(root) + 1:]
            if not rel or rel.startswith(".tmp-"):
                continue
            target = local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(key, str(target))
    except OSError as exc:
        raise FormatError(f"{url}: cannot download it: {exc}") from None
