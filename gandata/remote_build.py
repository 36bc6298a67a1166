"""Builds whose --output is an object-store URL.

The build runs exactly as a local one, into a local staging folder
(``--staging-dir``, or a temporary folder), and the finished dataset is then
uploaded with the manifest last (gandata.storage.publish_remote). Shards are
therefore byte-identical to a local build's, and a build interrupted before
the manifest upload leaves no manifest at the URL. With ``--staging-dir`` the
local build survives an interruption, so a re-run resumes and only uploads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from gandata.config import BuildConfig
from gandata.errors import ConfigError
from gandata.executors import Executor
from gandata.manifest import MANIFEST_FILE, REJECTED_FILE, SAMPLES_FILE, SHARDS_DIR
from gandata.storage import list_names, publish_remote, read_remote_manifest_json

if TYPE_CHECKING:
    from gandata.pipeline import BuildSummary, ProgressFn


def _check_remote_output(url: str, fingerprint: str, overwrite: bool) -> dict | None:
    """The remote manifest when it already holds exactly this build; raises
    ConfigError for another dataset or foreign objects without --overwrite."""
    manifest = read_remote_manifest_json(url)
    if manifest is not None:
        if manifest.get("build_fingerprint") == fingerprint:
            return manifest
        if not overwrite:
            raise ConfigError(
                f"--output: {url} already holds a dataset built with another config or other inputs; "
                "pass --overwrite to replace it"
            )
        return None
    if not overwrite:
        ours = (SHARDS_DIR, SAMPLES_FILE, REJECTED_FILE)
        foreign = [n for n in list_names(url) if n not in ours and not n.startswith(".tmp-")]
        if foreign:
            raise ConfigError(
                f"--output: {url} is not empty and holds no gandata dataset ({', '.join(foreign[:3])} ...); "
                "choose another URL or pass --overwrite"
            )
    return None


def build_remote(config: BuildConfig, progress: "ProgressFn | None" = None, executor: Executor | None = None) -> "BuildSummary":
    """Build ``config`` locally, then publish it to the URL ``config.output``."""
    from gandata.pipeline import BuildSummary, build, build_fingerprint, open_sources

    url = config.output.rstrip("/")
    fingerprint = build_fingerprint(config, open_sources(config))
    existing = _check_remote_output(url, fingerprint, config.overwrite)
    if existing is not None:
        return BuildSummary(
            output=url, num_samples=existing["num_samples"], classes=existing["classes"],
            class_counts=existing["class_counts"], rejections=existing.get("rejections", {}), up_to_date=True,
        )
    if config.staging_dir:
        # One folder per URL, kept: an interrupted build resumes from it.
        local = Path(config.staging_dir) / f"remote-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
        temporary = False
    else:
        local = Path(tempfile.mkdtemp(prefix="gandata-remote-")) / "ds"
        temporary = True
    try:
        # The local folder is ours alone, so replacing what it holds is safe.
        summary = build(dataclasses.replace(config, output=str(local), overwrite=True), progress=progress, executor=executor)
        manifest = json.loads((local / MANIFEST_FILE).read_text(encoding="utf-8"))
        manifest["config"] = config.to_json()
        publish_remote(local, url, manifest, progress)
    finally:
        if temporary and not config.keep_staging:
            shutil.rmtree(local.parent, ignore_errors=True)
    return dataclasses.replace(summary, output=url, up_to_date=False)
