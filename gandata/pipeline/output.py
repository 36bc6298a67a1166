"""The output check, one for local folders and object-store URLs: does the
output already hold exactly this build, another dataset, or things that are
not ours?
"""

from __future__ import annotations

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
)
from gandata.errors import ConfigError, FormatError
from gandata.pipeline.summary import BuildSummary
from gandata.util.remote import is_remote, list_names, local_path

# What a build writes into its output besides the manifest: these may be
# replaced; anything else is refused without --overwrite.
OWN_NAMES = (STAGING_DIR, CACHE_DIR, SHARDS_DIR, SAMPLES_FILE, REJECTED_FILE, CARD_FILE)


def _existing_manifest(output: str) -> dict[str, Any] | None:
    if is_remote(output):
        return read_remote_manifest_json(output)
    out = Path(local_path(output))
    if not (out / MANIFEST_FILE).exists():
        return None
    try:
        return read_manifest(out)
    except FormatError:
        return {}  # a broken manifest is another dataset, not this one


def _listing(output: str) -> list[str]:
    if is_remote(output):
        # Temporary keys of an interrupted upload are ours too.
        return [n for n in list_names(output) if not n.startswith(".tmp-")]
    out = Path(local_path(output))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output: {out} exists and is not a directory")
    return [p.name for p in out.iterdir()] if out.is_dir() else []


def check_output(output: str, fingerprint: str, overwrite: bool) -> dict[str, Any] | None:
    """The existing manifest when ``output`` already holds exactly the build
    with this fingerprint, else None (the build must run).

    Raises ConfigError, without ``overwrite``, when the output holds another
    dataset or anything a build did not write."""
    manifest = _existing_manifest(output)
    if manifest is not None:
        if manifest.get("build_fingerprint") == fingerprint:
            return manifest
        if not overwrite:
            raise ConfigError(
                f"--output: {output} already holds a dataset built with another config or other inputs; "
                "pass --overwrite to replace it (the old one stays intact until the new one is complete)"
            )
        return None
    names = _listing(output)
    foreign = sorted(n for n in names if n not in OWN_NAMES)
    if foreign and not overwrite:
        raise ConfigError(
            f"--output: {output} is not empty and holds no gandata dataset ({', '.join(foreign[:3])} ...); "
            "choose another directory or pass --overwrite"
        )
    return None


def up_to_date_summary(output: str, manifest: dict[str, Any]) -> BuildSummary:
    """The summary of a build that found its dataset already in place."""
    return BuildSummary(
        output=output, num_samples=manifest["num_samples"], classes=manifest["classes"],
        class_counts=manifest["class_counts"], rejections=manifest.get("rejections", {}), up_to_date=True,
    )
