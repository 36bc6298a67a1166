"""The local build engine: runs the stages in order into a local output folder.

sources -> ingest (parallel per partition) -> staging -> plan (global)
-> write (parallel per shard) -> samples index, rejections -> manifest (last)

Every unit of work is resumable: ingest partitions and shards are written
under temporary names and renamed when complete, and a re-run with the same
config reuses them. The manifest is published last; until then a reader sees
no dataset, and a previous dataset in the output directory stays intact
until the new one is complete.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

from gandata.config import BuildConfig
from gandata.dataset.manifest import CARD_FILE, REJECTED_FILE, SAMPLES_FILE, STAGING_DIR
from gandata.dataset.normalize import normalization_for
from gandata.errors import BuildError
from gandata.pipeline.executors import Executor, make_executor, stop_if_starting_helper
from gandata.pipeline.fill import run_synthetic_fill
from gandata.pipeline.inputs import BuildInputs, open_sources
from gandata.pipeline.stages import run_ingest, run_write
from gandata.pipeline.summary import BuildSummary
from gandata.plan.make import make_plan
from gandata.plan.table import Plan, StagedTable, load_staged
from gandata.records import ProgressFn, no_progress
from gandata.sources.base import Source
from gandata.util.remote import local_path
from gandata.write.card import write_card
from gandata.write.manifest import assemble_manifest
from gandata.write.publish import publish_local
from gandata.write.rejections import collect_rejections, write_rejections
from gandata.write.samples_index import write_samples_index


def build_local(config: BuildConfig, inputs: BuildInputs, progress: ProgressFn | None = None,
                executor: Executor | None = None) -> BuildSummary:
    """Run every stage of ``config`` into the local folder ``config.output``
    and publish the result there (the output check is the caller's)."""
    report = progress or no_progress
    timings: dict[str, float] = {}
    out = Path(local_path(config.output))
    sources, probe, fingerprint = list(inputs.sources), inputs.probe, inputs.fingerprint
    staging = out / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    own_executor = executor is None
    executor = executor or make_executor(config.executor, config.resolved_workers, config.ray_address)
    try:
        t0 = time.perf_counter()
        part_dirs, part_sources, reused_parts = run_ingest(config, sources, staging, executor, report)
        timings["ingest"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        near_dups = config.clean.enabled and config.clean.near_dups
        staged = load_staged(part_dirs, part_sources, [s.uri for s in sources],
                             memory_budget=config.memory_budget_bytes, spill_dir=staging / "plan",
                             thumbs_file=staging / "plan" / "thumbnails.u8" if near_dups else None)
        # On Ray the plan's heavy parts run as tasks on the cluster; locally
        # the plan runs here (shipping thumbnails to helpers costs more than it saves).
        plan = make_plan(staged, config, [s.class_names() for s in sources],
                         executor=executor if config.executor == "ray" else None)
        timings["plan"] = time.perf_counter() - t0

        fill = None
        if probe is not None:
            t0 = time.perf_counter()
            fill, sources, part_dirs, staged, plan = run_synthetic_fill(
                config, probe, list(sources), part_dirs, part_sources, staged, plan, staging, executor, report
            )
            timings["synthesize"] = time.perf_counter() - t0

        if len(plan.rows) == 0 and not config.allow_empty:
            _refuse_empty(part_dirs, plan)

        t0 = time.perf_counter()
        write_dir = staging / f"write-{fingerprint}"
        normalization = normalization_for(config.out.normalize, plan.mean, plan.std, config.image.channels)
        shard_results, reused_shards = run_write(config, staged, plan, normalization, write_dir, out, executor, report)
        timings["write"] = time.perf_counter() - t0
    finally:
        if own_executor:
            executor.close()

    t0 = time.perf_counter()
    rejections = collect_rejections(part_dirs, plan)
    manifest = assemble_manifest(config, fingerprint, sources, staged, plan, normalization, shard_results, rejections)
    if fill is not None:
        manifest["synthetic"] = fill.to_json()
    write_samples_index(write_dir / SAMPLES_FILE, staged, plan, sources)
    write_rejections(write_dir / REJECTED_FILE, rejections)
    write_card(write_dir / CARD_FILE, manifest, staged, plan, config.balance.mode)
    publish_local(out, write_dir, manifest)
    if not config.keep_staging:
        shutil.rmtree(staging, ignore_errors=True)
    timings["publish"] = time.perf_counter() - t0
    return BuildSummary(
        output=str(out), num_samples=manifest["num_samples"], classes=plan.classes,
        class_counts=manifest["class_counts"], rejections=manifest["rejections"],
        reused_partitions=reused_parts, reused_shards=reused_shards, seconds=timings,
        synthetic=manifest.get("synthetic"),
        web_hosts=_web_host_lines(sources),
        splits=manifest.get("splits", {}), preassigned_splits=manifest.get("preassigned_splits", {}),
    )


def _web_host_lines(sources: list[Source]) -> list[str]:
    """One line per host the build's web sources fetched from. Each source
    reports only its own hosts (the download cache may remember others from
    earlier builds); a host two sources share is reported once."""
    lines: dict[str, str] = {}
    for source in sources:
        # Sources come wrapped (provenance); only web sources have host figures.
        figures = getattr(getattr(source, "inner", source), "host_figures", None)
        if callable(figures):
            for figure in figures():
                lines[figure.host] = figure.describe()
    return [lines[host] for host in sorted(lines)]


def _refuse_empty(part_dirs: list[str], plan: Plan) -> None:
    """A build that keeps no sample is almost always a mistake (every URL
    refused, a wrong folder): fail with the rejection summary."""
    counts = Counter(r["reason"] for r in collect_rejections(part_dirs, plan))
    summary = ", ".join(f"{reason} {n}" for reason, n in counts.most_common()) or "no input found"
    raise BuildError(
        f"no sample kept ({sum(counts.values())} rejected: {summary}); nothing was published. "
        "Pass --allow-empty to publish an empty dataset"
    )


def ingest_only(config: BuildConfig, staging: Path, progress: ProgressFn | None = None) -> tuple[StagedTable, list[str]]:
    """Run only the ingest stage into ``staging`` (for ``gandata clean``):
    the staged table and the staged partition directories. Partitions are
    keyed like a build's, so a later run with the same options reuses them."""
    stop_if_starting_helper()
    config.validate()
    sources = open_sources(config)
    staging.mkdir(parents=True, exist_ok=True)
    executor = make_executor(config.executor, config.resolved_workers)
    try:
        part_dirs, part_sources, _ = run_ingest(config, sources, staging, executor, progress or no_progress)
    finally:
        executor.close()
    return load_staged(part_dirs, part_sources, [s.uri for s in sources]), part_dirs


