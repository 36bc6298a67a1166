"""The output check, one for local folders and object-store URLs: does the
output already hold exactly this build, another dataset, or things that are
not ours?
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gandata.dataset.manifest import (
    CACHE_DIR,
    CARD_FILE,
    MANIFEST_FILE,
    REJECTED_FILE,
    SAMPLES_FILE,
    SHARDS_DIR,
    STAGING_DIR,
    read_manifest,
    read_remote_manifest_json,
    validate_manifest,
)
from gandata.errors import BuildError, ConfigError, FormatError
from gandata.pipeline.lock import LOCK_FILE
from gandata.pipeline.summary import BuildSummary
from gandata.util.remote import filesystem, is_remote, local_path

# What a build writes into its output besides the manifest. These names are
# replaced or deleted by a build, so each must be provably ours first: the
# marker file (written before anything else) or a gandata manifest says so.
OWN_NAMES = (STAGING_DIR, CACHE_DIR, SHARDS_DIR, SAMPLES_FILE, REJECTED_FILE, CARD_FILE)
# Written into an output before the first byte of a build: everything under
# OWN_NAMES there was written by gandata.
MARKER_FILE = ".gandata-output"
# Shard files and the temporaries of an interrupted shard write.
_SHARD_NAME = re.compile(r"(\.tmp-)?shard-\d{5}\.safetensors(-\d+)?")


def _existing_manifest(output: str) -> dict[str, Any] | None:
    if is_remote(output):
        try:
            data = read_remote_manifest_json(output)
            if data is not None:
                validate_manifest(data, f"{output}/{MANIFEST_FILE}")
        except (FormatError, KeyError):
            return {}  # a broken manifest is another dataset, not this one
        return data
    out = Path(local_path(output))
    if not (out / MANIFEST_FILE).exists():
        return None
    try:
        return read_manifest(out)
    except FormatError:
        return {}  # a broken manifest is another dataset, not this one


def _entries(output: str) -> list[str]:
    """Every file and folder under ``output``, as relative POSIX paths
    (folders end with "/"); only the top level and shards/ are listed."""
    if is_remote(output):
        fs, root = filesystem(output)
        try:
            keys = fs.find(root, withdirs=False)
        except FileNotFoundError:
            return []
        # Temporary keys of an interrupted upload are ours too.
        rels = [k[len(root) + 1:] for k in keys]
        return sorted({r if "/" not in r or r.startswith(f"{SHARDS_DIR}/") else r.split("/")[0] + "/"
                       for r in rels if r and not r.startswith(".tmp-")})
    out = Path(local_path(output))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output: {out} exists and is not a directory")
    if not out.is_dir():
        return []
    try:
        names = []
        for p in out.iterdir():
            if p.name == SHARDS_DIR and p.is_dir() and not p.is_symlink():
                names.append(f"{SHARDS_DIR}/")
                names += [f"{SHARDS_DIR}/{q.name}" + ("/" if q.is_dir() else "") for q in p.iterdir()]
            else:
                names.append(p.name + ("/" if p.is_dir() and not p.is_symlink() else ""))
        return sorted(names)
    except OSError as exc:
        raise ConfigError(f"--output: cannot list {out}: {exc.strerror or exc}") from None


def _not_ours(entries: list[str], manifest: dict[str, Any] | None) -> list[str]:
    """The entries a build would replace or delete but that gandata did not
    provably write: without a marker or a manifest, none of them is ours."""
    marked = MARKER_FILE in entries
    known = marked or manifest is not None
    listed = {s["path"] for s in (manifest or {}).get("shards", []) if isinstance(s, dict)}
    foreign = []
    for entry in entries:
        name = entry.rstrip("/")
        if entry.startswith(f"{SHARDS_DIR}/") and name != SHARDS_DIR:
            if not (known and (name in listed or (not entry.endswith("/") and _SHARD_NAME.fullmatch(name[len(SHARDS_DIR) + 1:])))):
                foreign.append(name)
        elif name == SHARDS_DIR:
            if not entry.endswith("/"):
                foreign.append(name)  # a file or link where the shards folder goes
        elif name in OWN_NAMES and not known:
            foreign.append(name)
    return foreign


def check_output(output: str, fingerprint: str, overwrite: bool) -> dict[str, Any] | None:
    """The existing manifest when ``output`` already holds exactly the build
    with this fingerprint, else None (the build must run).

    Raises ConfigError when the output holds files a build would replace but
    gandata did not write (even with ``overwrite``: nothing foreign is ever
    deleted), and, without ``overwrite``, when it holds another dataset or
    anything else a build did not write."""
    manifest = _existing_manifest(output)
    if manifest is not None and manifest.get("build_fingerprint") == fingerprint:
        return manifest
    entries = _entries(output)
    foreign = _not_ours(entries, manifest or None)
    if foreign:
        raise ConfigError(
            f"--output: {output} holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, which gandata did "
            "not write and a build would replace; move it away or choose another directory"
        )
    if manifest is not None:
        if not overwrite:
            raise ConfigError(
                f"--output: {output} already holds a dataset built with another config or other inputs; "
                "pass --overwrite to replace it (the old one stays intact until the new one is complete)"
            )
        return None
    others = sorted({e.rstrip("/").split("/")[0] for e in entries} - set(OWN_NAMES) - {MARKER_FILE, LOCK_FILE})
    if others and not overwrite:
        raise ConfigError(
            f"--output: {output} is not empty and holds no gandata dataset ({', '.join(others[:3])} ...); "
            "choose another directory or pass --overwrite"
        )
    return None


def mark_output(output: str) -> None:
    """Write the marker saying that this output is gandata's (before any
    other byte of the build), so a later build may replace what it wrote."""
    text = '{"written_by": "gandata"}\n'
    try:
        if is_remote(output):
            fs, root = filesystem(output)
            fs.pipe_file(f"{root}/{MARKER_FILE}", text.encode())
        else:
            path = Path(local_path(output)) / MARKER_FILE
            if not path.exists():
                path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"--output: cannot write in {output}: {exc.strerror or exc}") from None


def up_to_date_summary(output: str, manifest: dict[str, Any]) -> BuildSummary:
    """The summary of a build that found its dataset already in place."""
    return BuildSummary(
        output=output, num_samples=manifest["num_samples"], classes=manifest["classes"],
        class_counts=manifest["class_counts"], rejections=manifest.get("rejections", {}), up_to_date=True,
    )
