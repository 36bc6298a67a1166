"""The manifest: the versioned description of a built dataset.

docs/FORMAT.md is the spec; this module writes and validates it. The
manifest is written last and atomically, so its presence means every shard it
lists is complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gandata.errors import FormatError
from gandata.util.remote import filesystem, is_remote, join, local_path

FORMAT_NAME = "gandata"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
SAMPLES_FILE = "samples.parquet"
REJECTED_FILE = "rejected.jsonl"
SHARDS_DIR = "shards"
# The dataset card (HuggingFace dataset-card form) every build writes (gandata.write.card).
CARD_FILE = "README.md"
# Working folders a build keeps inside its output: the staging area (removed
# after success unless --keep-staging) and caches kept across builds (web
# downloads; docs/WEB.md).
STAGING_DIR = ".staging"
CACHE_DIR = ".cache"

REQUIRED_KEYS = (
    "format", "version", "num_samples", "image_shape", "dtype", "normalization",
    "classes", "class_counts", "shards", "seed", "config", "mean", "std",
)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON under a temporary name, fsync, then rename into place."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``root/manifest.json`` (``root`` may be an fsspec
    URL); raises FormatError."""
    if is_remote(root):
        path: Any = f"{str(root).rstrip('/')}/{MANIFEST_FILE}"
        data = read_remote_manifest_json(str(root))
        if data is None:
            raise FormatError(f"{path}: missing; {root} is not a built gandata dataset (or its build did not finish)")
    else:
        root = local_path(root)
        path = Path(root) / MANIFEST_FILE
        if not path.is_file():
            if not Path(root).exists():
                raise FormatError(f"{root}: no such dataset directory")
            raise FormatError(f"{path}: missing; {root} is not a built gandata dataset (or its build did not finish)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise FormatError(f"{path}: not a gandata manifest (format is {data.get('format') if isinstance(data, dict) else None!r})")
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{path}: format version {version!r} is not supported by this gandata "
            f"(it reads version {FORMAT_VERSION}); upgrade gandata or rebuild the dataset"
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise FormatError(f"{path}: missing keys {', '.join(missing)}")
    return data


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
