"""Audits of raw sources, ingested exactly as a build would ingest them:
``gandata stats SOURCES`` (``audit_sources``) and ``gandata clean`` (``clean_report``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from gandata.config import BuildConfig
from gandata.dataset.manifest import STAGING_DIR
from gandata.pipeline.executors import make_executor
from gandata.pipeline.inputs import open_sources
from gandata.pipeline.local import ingest_only
from gandata.pipeline.stages import run_ingest
from gandata.plan.table import load_staged
from gandata.records import ProgressFn, no_progress
from gandata.stats.audit import (
    Audit,
    audit_staged,
)
from gandata.stats.clean_report import AuditSummary, write_report
from gandata.stats.figures import DEFAULT_BETA, DEFAULT_FLOOR


def audit_sources(config: Any, beta: float = DEFAULT_BETA, floor: int = DEFAULT_FLOOR,
                  progress: ProgressFn | None = None) -> Audit:
    """Audit raw sources: ingest them as a build would (same decoding, same
    rejections) into a temporary staging directory, then count."""
    sources = open_sources(config)
    with tempfile.TemporaryDirectory(prefix="gandata-stats-") as tmp:
        executor = make_executor(config.executor, config.resolved_workers)
        try:
            part_dirs, part_sources, _ = run_ingest(config, sources, Path(tmp), executor, progress or no_progress)
        finally:
            executor.close()
        staged = load_staged(part_dirs, part_sources, [s.uri for s in sources])
        return audit_staged(config, staged, part_dirs, [s.class_names() for s in sources], beta=beta, floor=floor)


def clean_report(config: BuildConfig, report_dir: str | Path, progress: ProgressFn | None = None,
                 keep_staging: bool = False) -> AuditSummary:
    """Ingest the config's sources into ``REPORT/.staging``, apply the
    cleaning checks and write the audit report into ``report_dir``."""
    staging = Path(report_dir) / STAGING_DIR
    staged, part_dirs = ingest_only(config, staging, progress)
    summary = write_report(config, staged, part_dirs, report_dir)
    if not keep_staging:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
