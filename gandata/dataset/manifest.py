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
from gandata.util.paths import is_safe_component, is_safe_relative
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
    validate_manifest(data, str(path))
    return data


DTYPES = ("uint8", "float16", "float32")
# Far above any --size a build accepts; a reader allocates [N, C, H, W] from
# these numbers, so absurd values must stop here.
MAX_SIDE_PX = 65536


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _counts_table(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _count(v) for k, v in value.items())


def validate_manifest(data: dict[str, Any], path: str = MANIFEST_FILE) -> None:
    """Check the types and shapes of every field a reader relies on, once,
    so that readers can index the manifest without further checks. Paths
    and split names become file names: they must be relative and stay inside
    the dataset. Raises FormatError naming the field."""

    def bad(field: str, value: Any, what: str) -> FormatError:
        shown = repr(value)
        return FormatError(f"{path}: {field} is {shown[:80]}{'...' if len(shown) > 80 else ''}; expected {what}")

    if not _count(data["num_samples"]):
        raise bad("num_samples", data["num_samples"], "a non-negative integer")
    shape = data["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(_count(v) and 0 < v <= MAX_SIDE_PX for v in shape)
            and shape[0] in (1, 3)):
        raise bad("image_shape", shape, "[C, H, W] with C 1 or 3 and positive H, W")
    if data["dtype"] not in DTYPES:
        raise bad("dtype", data["dtype"], f"one of {', '.join(DTYPES)}")
    norm = data["normalization"]
    if not (isinstance(norm, dict) and isinstance(norm.get("mode"), str)
            and all(isinstance(norm.get(k), list) and len(norm[k]) == shape[0] and all(map(_number, norm[k]))
                    for k in ("offset", "scale"))):
        raise bad("normalization", norm, "{mode, offset: [C numbers], scale: [C numbers]}")
    classes = data["classes"]
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise bad("classes", classes, "a list of class names")
    if len(set(classes)) != len(classes):
        raise bad("classes", classes, "distinct class names")
    if not _counts_table(data["class_counts"]):
        raise bad("class_counts", data["class_counts"], "a table of class name: count")
    for key in ("mean", "std"):
        if not (isinstance(data[key], list) and all(map(_number, data[key]))):
            raise bad(key, data[key], "a list of numbers")
    if not _count(data["seed"]):
        raise bad("seed", data["seed"], "a non-negative integer")
    for key in ("num_unlabeled", "num_upscaled"):
        if key in data and not _count(data[key]):
            raise bad(key, data[key], "a non-negative integer")
    if "sources" in data and not isinstance(data["sources"], list):
        raise bad("sources", data["sources"], "a list of source tables")
    for i, source in enumerate(data.get("sources", [])):
        if not isinstance(source, dict) or not isinstance(source.get("uri", ""), str):
            raise bad(f"sources[{i}]", source, "a table {uri, num_samples, num_rejected, license, licenses}")
        for key in ("num_samples", "num_rejected"):
            if key in source and not _count(source[key]):
                raise bad(f"sources[{i}].{key}", source[key], "a non-negative integer")
        if "licenses" in source and not _counts_table(source["licenses"]):
            raise bad(f"sources[{i}].licenses", source["licenses"], "a table of licence: count")
        if source.get("license") is not None and not isinstance(source["license"], str):
            raise bad(f"sources[{i}].license", source["license"], "a string")
    if not isinstance(data["config"], dict):
        raise bad("config", data["config"], "a table")
    for key in ("splits", "rejections", "licenses"):
        if key in data and not _counts_table(data[key]):
            raise bad(key, data[key], "a table of name: count")
    if not all(is_safe_component(name) for name in data.get("splits", {})):
        raise bad("splits", data["splits"], "split names that are single path components")
    shards = data["shards"]
    if not isinstance(shards, list):
        raise bad("shards", shards, "a list of shard entries")
    for i, entry in enumerate(shards):
        where = f"shards[{i}]"
        if not isinstance(entry, dict):
            raise bad(where, entry, "a table {path, num_samples, sha256, split, class_counts}")
        if not is_safe_relative(entry.get("path")):
            raise bad(f"{where}.path", entry.get("path"), "a relative path inside the dataset (no '..', not absolute)")
        if not _count(entry.get("num_samples")):
            raise bad(f"{where}.num_samples", entry.get("num_samples"), "a non-negative integer")
        if not isinstance(entry.get("sha256"), str):
            raise bad(f"{where}.sha256", entry.get("sha256"), "a hex digest")
        if "split" in entry and not is_safe_component(entry["split"]):
            raise bad(f"{where}.split", entry["split"], "a split name that is a single path component")
        if "class_counts" in entry and not _counts_table(entry["class_counts"]):
            raise bad(f"{where}.class_counts", entry["class_counts"], "a table of class name: count")


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
