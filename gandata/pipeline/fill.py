"""The synthetic fill's rounds (``--balance synthesize``): generate, ingest and plan
again until each class reaches its target or no round makes progress.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gandata.config import BuildConfig, SourceSpec
from gandata.errors import ConfigError, SourceError
from gandata.ingest.staging import read_meta, read_rejections
from gandata.pipeline.executors import Executor
from gandata.pipeline.inputs import generator_summary, source_context
from gandata.pipeline.stages import run_ingest
from gandata.plan.make import make_plan
from gandata.plan.synthetic_fill import (
    MAX_ROUNDS,
    FillRecord,
    gan_uri,
    plan_fill,
    round_seed,
    synthetic_counts,
)
from gandata.plan.table import Plan, StagedTable, load_staged, synthetic_mask
from gandata.records import ProgressFn
from gandata.sources import open_source
from gandata.sources.base import Source


def run_synthetic_fill(
    config: BuildConfig, probe: Source, sources: list[Source], part_dirs: list[str], part_sources: list[int],
    staged: StagedTable, plan: Plan, staging: Path, executor: Executor, report: ProgressFn,
) -> tuple[FillRecord, list[Source], list[str], StagedTable, Plan]:
    """``--balance synthesize``: fill each class of the training split up to
    its target with samples of the ``--synth-from`` generator.

    Each round opens a ``gan:`` source for what is still missing, ingests it
    into staging like any source (so resume covers it) and plans again with
    it; cleaning may drop some synthetic samples (duplicates, blank images)
    and the classifier filter others, so up to MAX_ROUNDS rounds top up. What
    is still missing then is recorded as the ``shortfall``."""
    bc = config.balance
    summary = generator_summary(probe)
    generator_classes = summary.get("classes") or probe.class_names() or []
    fill = plan_fill(plan.labels, plan.splits, plan.classes, bc, generator_classes)
    record = FillRecord(fill=fill, generator=summary or {"run": bc.synth_from}, max_share=bc.max_synthetic_share)
    specs = list(config.sources)
    part_dirs, part_sources = list(part_dirs), list(part_sources)
    real_declared = [s.class_names() for s in sources]
    missing = dict(fill.deficits)
    ctx = source_context(config)
    for round_no in range(MAX_ROUNDS):
        if not any(missing.values()):
            break
        seed = round_seed(config.seed, round_no)
        spec = SourceSpec(gan_uri(bc, missing, seed))
        try:
            source = open_source(spec, ctx)
        except SourceError as exc:
            raise ConfigError(f"--synth-from: {exc}") from None
        phase = "synth" if round_no == 0 else f"synth{round_no + 1}"
        dirs, indices, _ = run_ingest(
            replace(config, sources=(spec,)), [source], staging, executor,
            lambda _phase, done, total: report(phase, done, total), first_index=len(specs),
        )
        for partition, part_dir in zip(source.partitions(), dirs):
            name = partition.items[0]
            record.generated[name] += read_meta(Path(part_dir)).num_rows
            record.rejected[name] += sum(1 for r in read_rejections(Path(part_dir)) if r.get("reason") == "off_class")
        record.seeds.append(seed)
        specs.append(spec)
        sources.append(source)
        part_dirs += dirs
        part_sources += indices
        staged = load_staged(part_dirs, part_sources, [s.uri for s in sources])
        # The generator's rounds declare no class order: the classes (and so
        # the label ids) stay those of the real data.
        declared = real_declared + [None] * (len(sources) - len(real_declared))
        plan = make_plan(staged, replace(config, sources=tuple(specs)), declared)
        have = synthetic_counts(plan.labels, plan.splits, synthetic_mask(staged)[plan.rows], plan.classes)
        record.counts = have
        still = {name: max(0, fill.deficits[name] - have.get(name, 0)) for name in fill.deficits}
        if sum(still.values()) >= sum(missing.values()):
            break  # no progress: another round would not do better
        missing = still
    return record, sources, part_dirs, staged, plan
