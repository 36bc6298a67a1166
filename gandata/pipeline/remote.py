"""Builds whose --output is an object-store URL.

The build runs exactly as a local one, into a local staging folder
(``--staging-dir``, or a temporary folder), and the finished dataset is then
uploaded with the manifest last (gandata.write.publish.publish_remote). Shards are
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

from gandata.config import BuildConfig
from gandata.dataset.manifest import MANIFEST_FILE
from gandata.pipeline.executors import Executor
from gandata.pipeline.inputs import BuildInputs
from gandata.pipeline.local import build_local
from gandata.pipeline.lock import output_lock
from gandata.pipeline.output import check_output, mark_output, up_to_date_summary
from gandata.pipeline.summary import BuildSummary
from gandata.records import ProgressFn
from gandata.write.publish import publish_remote


def build_remote(config: BuildConfig, inputs: BuildInputs, progress: ProgressFn | None = None,
                 executor: Executor | None = None) -> BuildSummary:
    """Build ``config`` locally, then publish it to the URL ``config.output``
    (the output check is the caller's)."""
    url = config.output.rstrip("/")
    if config.staging_dir:
        # One folder per URL, kept: an interrupted build resumes from it.
        local = Path(config.staging_dir) / f"remote-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
        temporary = False
    else:
        local = Path(tempfile.mkdtemp(prefix="gandata-remote-")) / "ds"
        temporary = True
    try:
        # The local folder is ours alone, so replacing what it holds is safe;
        # a complete local build of this fingerprint is only uploaded again.
        local_config = dataclasses.replace(config, output=str(local), overwrite=True)
        # A --staging-dir folder may be shared by two builds of one URL.
        with output_lock(local):
            existing = check_output(str(local), inputs.fingerprint, overwrite=True)
            if existing is not None and not config.retry_failed:
                summary = up_to_date_summary(str(local), existing)
            else:
                mark_output(str(local))
                summary = build_local(local_config, inputs, progress=progress, executor=executor)
        manifest = json.loads((local / MANIFEST_FILE).read_text(encoding="utf-8"))
        manifest["config"] = config.to_json()
        publish_remote(local, url, manifest, progress)
    finally:
        if temporary and not config.keep_staging:
            shutil.rmtree(local.parent, ignore_errors=True)
    return dataclasses.replace(summary, output=url, up_to_date=False)
