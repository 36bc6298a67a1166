"""The build pipeline: the only module that knows the order of the stages.

sources -> ingest (parallel per partition) -> staging -> plan (global)
-> write (parallel per shard) -> samples index, rejections -> manifest (last)

Every unit of work is resumable: ingest partitions and shards are written
under temporary names and renamed when complete, and a re-run with the same
config reuses them. The manifest is published last; until then a reader sees
no dataset, and a previous dataset in the output directory stays intact
until the new one is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gandata import __version__
from gandata.arrow_columns import bool_column, numpy_column, python_column, string_column
from gandata.config import BuildConfig, SourceSpec
from gandata.errors import BuildError, ConfigError, FormatError, SourceError
from gandata.executors import Executor, make_executor
from gandata.ingest import IngestTask, ingest_partition
from gandata.merge import PLAN_ONLY_OPTIONS
from gandata.manifest import (
    FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE, REJECTED_FILE, SAMPLES_FILE, SHARDS_DIR,
    read_manifest, write_json_atomic,
)
from gandata.normalize import normalization_for
from gandata.provenance import manifest_provenance
from gandata.plan import Plan, StagedTable, load_staged, make_plan, synthetic_mask
from gandata.sources import Source, SourceContext, open_source
from gandata.staging import partition_dir_name, read_meta, read_rejections
from gandata.synthesize import MAX_ROUNDS, FillRecord, gan_uri, plan_fill, round_seed, synthetic_counts
from gandata.storage import is_remote, local_path
from gandata.write import ShardTask, write_shard

STAGING_DIR = ".staging"
# Caches kept across builds (web downloads); see docs/WEB.md.
CACHE_DIR = ".cache"

# (phase, done, total): called as work completes; the CLI draws progress bars.
ProgressFn = Callable[[str, int, int], None]


@dataclass
class BuildSummary:
    """What a build did, for the CLI to report."""

    output: str
    num_samples: int
    classes: list[str]
    class_counts: dict[str, int]
    rejections: dict[str, int]
    up_to_date: bool = False
    reused_partitions: int = 0
    reused_shards: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # --balance synthesize: the manifest's ``synthetic`` record.
    synthetic: dict[str, Any] | None = None


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _noop_progress(phase: str, done: int, total: int) -> None:
    pass


def _context(config: BuildConfig) -> SourceContext:
    return SourceContext(
        size_px=config.image.size_px,
        channels=config.image.channels,
        seed=config.seed,
        allow_private_network=config.allow_private_network,
        cache_dir=str(Path(config.output) / CACHE_DIR / "web"),
    )


def open_sources(config: BuildConfig) -> list[Source]:
    """Open every source of the config (fails fast on a bad URI)."""
    ctx = _context(config)
    return [open_source(spec, ctx) for spec in config.sources]


def open_synth_probe(config: BuildConfig) -> Source | None:
    """With ``--balance synthesize``: the generator of ``--synth-from`` opened
    as a one-sample ``gan:`` source, through the source registry. It checks
    the run up front (exists, conditional, classifier ready when filtering)
    and its fingerprint (checkpoint SHA-256, options) enters the build's.
    None for other modes."""
    bc = config.balance
    if bc.mode != "synthesize":
        return None
    try:
        probe = open_source(SourceSpec(gan_uri(bc)), _context(config))
    except SourceError as exc:
        raise ConfigError(f"--synth-from: {exc}") from None
    if generator_summary(probe).get("conditional") is False or probe.class_names() is None:
        raise ConfigError(
            f"--synth-from: the generator in {bc.synth_from} is unconditional; synthetic fill needs a "
            "class-conditional one (gantrain train --conditional)"
        )
    return probe


def generator_summary(source: Source) -> dict[str, Any]:
    """What a generating source says about its generator (``summary()`` of a
    ``gan:`` source: run, checkpoint and its SHA-256, classes, ...); {} when
    it says nothing."""
    summary = getattr(getattr(source, "inner", source), "summary", None)
    return dict(summary()) if callable(summary) else {}


def build_fingerprint(config: BuildConfig, sources: Sequence[Source], synth: Source | None = None) -> str:
    """Identifies the dataset a config produces: same fingerprint, same bytes.

    ``synth`` (``open_synth_probe``) adds the fill's generator: another
    checkpoint or classifier is another dataset, so a resume never mixes
    generators."""
    data = config.to_json()
    for key in ("output", "workers", "executor", "keep_staging", "overwrite", "ray_address", "staging_dir", "retry_failed"):
        data.pop(key, None)
    extra = {"synth": synth.fingerprint()} if synth is not None else {}
    return _digest({"config": data, "sources": [s.fingerprint() for s in sources], "version": FORMAT_VERSION, **extra})


def _check_output(out: Path, fingerprint: str, overwrite: bool) -> bool:
    """True when ``out`` already holds exactly this build. Refuses to replace
    a different dataset, or a folder that is not one, without --overwrite."""
    manifest_path = out / MANIFEST_FILE
    if manifest_path.exists():
        try:
            manifest = read_manifest(out)
        except FormatError:
            manifest = {}
        if manifest.get("build_fingerprint") == fingerprint:
            return True
        if not overwrite:
            raise ConfigError(
                f"--output: {out} already holds a dataset built with another config or other inputs; "
                "pass --overwrite to replace it (the old one stays intact until the new one is complete)"
            )
        return False
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output: {out} exists and is not a directory")
    if out.is_dir() and not overwrite:
        foreign = [p.name for p in out.iterdir() if p.name not in (STAGING_DIR, CACHE_DIR, SHARDS_DIR, SAMPLES_FILE, REJECTED_FILE)]
        if foreign:
            raise ConfigError(
                f"--output: {out} is not empty and holds no gandata dataset ({', '.join(sorted(foreign)[:3])} ...); "
                "choose another directory or pass --overwrite"
            )
    return False


def build(config: BuildConfig, progress: ProgressFn | None = None, executor: Executor | None = None) -> BuildSummary:
    """Build the dataset ``config`` describes; returns a summary.

    Raises ConfigError / SourceError for bad options or sources (before any
    work), BuildError when a stage fails; a failed build leaves any previous
    dataset in the output directory untouched.
    """
    config.validate()
    if is_remote(config.output):
        # Object-store output: built locally, then uploaded manifest-last.
        from gandata.remote_build import build_remote

        return build_remote(config, progress, executor)
    report = progress or _noop_progress
    timings: dict[str, float] = {}
    out = Path(local_path(config.output))
    sources = open_sources(config)
    probe = open_synth_probe(config)
    fingerprint = build_fingerprint(config, sources, probe)
    # --retry-failed rebuilds an up-to-date dataset: web sources fetch again
    # the URLs that failed (the rest comes from their download cache).
    if _check_output(out, fingerprint, config.overwrite) and not config.retry_failed:
        manifest = read_manifest(out)
        return BuildSummary(
            output=str(out), num_samples=manifest["num_samples"], classes=manifest["classes"],
            class_counts=manifest["class_counts"], rejections=manifest.get("rejections", {}), up_to_date=True,
        )
    staging = out / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    own_executor = executor is None
    executor = executor or make_executor(config.executor, config.resolved_workers, config.ray_address)
    try:
        t0 = time.perf_counter()
        part_dirs, part_sources, reused_parts = _ingest(config, sources, staging, executor, report)
        timings["ingest"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        staged = load_staged(part_dirs, part_sources, [s.uri for s in sources])
        plan = make_plan(staged, config, [s.class_names() for s in sources])
        timings["plan"] = time.perf_counter() - t0

        fill = None
        if probe is not None:
            t0 = time.perf_counter()
            fill, sources, part_dirs, staged, plan = _synthesize(
                config, probe, list(sources), part_dirs, part_sources, staged, plan, staging, executor, report
            )
            timings["synthesize"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        write_dir = staging / f"write-{fingerprint}"
        shard_results, reused_shards = _write(config, staged, plan, write_dir, out, executor, report)
        timings["write"] = time.perf_counter() - t0
    finally:
        if own_executor:
            executor.close()

    t0 = time.perf_counter()
    rejections = _collect_rejections(part_dirs, plan)
    manifest = _manifest(config, fingerprint, sources, staged, plan, shard_results, rejections)
    if fill is not None:
        manifest["synthetic"] = fill.to_json()
    _write_samples_index(write_dir / SAMPLES_FILE, staged, plan, sources)
    _write_rejections(write_dir / REJECTED_FILE, rejections)
    _publish(out, write_dir, manifest)
    if not config.keep_staging:
        shutil.rmtree(staging, ignore_errors=True)
    timings["publish"] = time.perf_counter() - t0
    return BuildSummary(
        output=str(out), num_samples=manifest["num_samples"], classes=plan.classes,
        class_counts=manifest["class_counts"], rejections=manifest["rejections"],
        reused_partitions=reused_parts, reused_shards=reused_shards, seconds=timings,
        synthetic=manifest.get("synthetic"),
    )


def ingest_only(config: BuildConfig, staging: Path, progress: ProgressFn | None = None) -> tuple[StagedTable, list[str]]:
    """Run only the ingest stage into ``staging`` (for ``gandata clean``):
    the staged table and the staged partition directories. Partitions are
    keyed like a build's, so a later run with the same options reuses them."""
    config.validate()
    sources = open_sources(config)
    staging.mkdir(parents=True, exist_ok=True)
    executor = make_executor(config.executor, config.resolved_workers)
    try:
        part_dirs, part_sources, _ = _ingest(config, sources, staging, executor, progress or _noop_progress)
    finally:
        executor.close()
    return load_staged(part_dirs, part_sources, [s.uri for s in sources]), part_dirs


def _synthesize(
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
    ctx = _context(config)
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
        dirs, indices, _ = _ingest(
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


def _ingest(
    config: BuildConfig, sources: Sequence[Source], staging: Path, executor: Executor, report: ProgressFn,
    first_index: int = 0,
) -> tuple[list[str], list[int], int]:
    tasks: list[IngestTask] = []
    for si, (spec, source) in enumerate(zip(config.sources, sources), start=first_index):
        # Staged partitions depend only on the source and the image options,
        # so changing e.g. normalization or shard size reuses them.
        spec_json = {k: v for k, v in spec.to_json().items() if k not in PLAN_ONLY_OPTIONS}
        ingest_key = _digest({"source": spec_json, "content": source.fingerprint(), "image": config.to_json()["image"],
                              # --retry-failed: re-stage, so failed downloads are tried again.
                              **({"retry": True} if config.retry_failed else {})})
        source_dir = staging / f"ingest-{ingest_key}"
        source_dir.mkdir(parents=True, exist_ok=True)
        for partition in source.partitions():
            part_dir = source_dir / partition_dir_name(si, partition.index)
            tasks.append(IngestTask(source=source, source_index=si, partition=partition, image=config.image, part_dir=str(part_dir)))
    report("ingest", 0, len(tasks))
    reused = 0
    for done, (_, result) in enumerate(executor.imap(ingest_partition, tasks), start=1):
        reused += int(result.reused)
        report("ingest", done, len(tasks))
    return [t.part_dir for t in tasks], [t.source_index for t in tasks], reused


def _write(
    config: BuildConfig, staged: StagedTable, plan: Plan, write_dir: Path, out: Path,
    executor: Executor, report: ProgressFn,
) -> tuple[list[Any], int]:
    shard_dir = write_dir / SHARDS_DIR
    _recover_interrupted_publish(write_dir, out)
    shard_dir.mkdir(parents=True, exist_ok=True)
    normalization = normalization_for(config.out.normalize, plan.mean, plan.std, config.image.channels)
    plan.extra["normalization"] = normalization
    parts = staged.column("part").astype(np.int32) if staged.num_rows else np.zeros(0, np.int32)
    rows = staged.column("row").astype(np.int32) if staged.num_rows else np.zeros(0, np.int32)
    part_dirs = tuple(staged.part_dirs)
    tasks = []
    for shard in plan.shards:
        entries = shard.entries
        staged_rows = plan.rows[entries]
        tasks.append(
            ShardTask(
                index=shard.index,
                path=str(shard_dir / f"shard-{shard.index:05d}.safetensors"),
                part_dirs=part_dirs,
                parts=parts[staged_rows],
                rows=rows[staged_rows],
                labels=plan.labels[entries],
                dtype=config.out.dtype,
                normalization=normalization,
                weights=None if plan.weights is None else plan.weights[entries],
                augmentations=None if plan.augmentation is None else tuple(plan.augmentation[i] for i in entries),
                augment_seeds=plan.extra.get("augment_seeds")[entries] if "augment_seeds" in plan.extra else None,
                augmenter=plan.extra.get("augmenter"),
            )
        )
    report("write", 0, len(tasks))
    results: list[Any] = [None] * len(tasks)
    reused = 0
    for done, (i, result) in enumerate(executor.imap(write_shard, tasks), start=1):
        results[i] = result
        reused += int(result.reused)
        report("write", done, len(tasks))
    return results, reused


def _collect_rejections(part_dirs: Sequence[str], plan: Plan) -> list[dict[str, Any]]:
    rejections: list[dict[str, Any]] = []
    for part_dir in part_dirs:
        rejections.extend(read_rejections(Path(part_dir)))
    rejections.extend(r.to_json() for r in plan.rejections)
    return rejections


def _manifest(
    config: BuildConfig, fingerprint: str, sources: Sequence[Source], staged: StagedTable, plan: Plan,
    shard_results: Sequence[Any], rejections: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    classes = plan.classes
    shards = []
    for shard, result in zip(plan.shards, shard_results):
        labels = plan.labels[shard.entries]
        shards.append({
            "path": f"{SHARDS_DIR}/{Path(result.path).name}",
            "num_samples": int(result.num_samples),
            "sha256": result.sha256,
            "split": shard.split,
            "class_counts": {name: int((labels == i).sum()) for i, name in enumerate(classes)},
        })
    splits = Counter(plan.splits.tolist())
    source_index = staged.column("source_index")[plan.rows] if len(plan.rows) else np.zeros(0, np.int32)
    rejected_by_source = Counter(r.get("uri", "") for r in rejections)
    upscaled = int((staged.column("upscale")[plan.rows] > 1.0).sum()) if len(plan.rows) else 0
    normalization = plan.extra["normalization"]
    licenses, source_extras = manifest_provenance(staged, plan.rows, sources)
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created_by": f"gandata {__version__}",
        "num_samples": int(len(plan.rows)),
        "image_shape": [config.image.channels, config.image.size_px, config.image.size_px],
        "dtype": config.out.dtype,
        "normalization": normalization.to_json(),
        "classes": classes,
        "class_counts": {name: int((plan.labels == i).sum()) for i, name in enumerate(classes)},
        "num_unlabeled": int((plan.labels < 0).sum()),
        "splits": {name: int(splits[name]) for name in sorted(splits)},
        "shards": shards,
        "seed": config.seed,
        "mean": plan.mean,
        "std": plan.std,
        "sources": [
            {"uri": s.uri, "num_samples": int((source_index == i).sum()), "num_rejected": int(rejected_by_source.get(s.uri, 0)), **source_extras[i]}
            for i, s in enumerate(sources)
        ],
        "licenses": licenses,
        "rejections": dict(sorted(Counter(r["reason"] for r in rejections).items())),
        "num_upscaled": upscaled,
        **({"clean": plan.extra["clean"]} if "clean" in plan.extra else {}),
        "build_fingerprint": fingerprint,
        "config": config.to_json(),
    }


def _write_samples_index(path: Path, staged: StagedTable, plan: Plan, sources: Sequence[Source]) -> None:
    """samples.parquet: one row per output sample, mapping it to its shard
    and row and back to its source."""
    n = len(plan.rows)
    shard_of = np.zeros(n, np.int32)
    row_of = np.zeros(n, np.int32)
    for shard in plan.shards:
        shard_of[shard.entries] = shard.index
        row_of[shard.entries] = np.arange(len(shard.entries), dtype=np.int32)
    # Rows sorted by (shard, row), the order a reader iterates in.
    order = np.lexsort((row_of, shard_of))
    staged_rows = plan.rows[order]
    take = numpy_column(staged_rows)
    table = staged.table
    keys = table.column("key").take(take) if n else string_column([])
    if plan.derived_from is not None:
        # An oversampled copy gets its own key: the original's, plus ~copyN.
        copy_no = plan.extra["copy_numbers"][order]
        keys = string_column([k if c == 0 else f"{k}~copy{c}" for k, c in zip(keys.to_pylist(), copy_no.tolist())])
    classes = plan.classes
    labels = plan.labels[order]
    source_idx = staged.column("source_index")[staged_rows] if n else np.zeros(0, np.int32)
    derived = None
    if plan.derived_from is not None:
        all_keys = table.column("key").to_pylist()
        derived = [all_keys[d] if d >= 0 else None for d in plan.derived_from[order]]
    columns: dict[str, Any] = {
        "shard": numpy_column(shard_of[order]),
        "row": numpy_column(row_of[order]),
        "key": keys,
        "label": numpy_column(labels.astype(np.int64)),
        "class_name": string_column([classes[i] if i >= 0 else None for i in labels]),
        "source": string_column([sources[i].uri for i in source_idx]),
        "locator": table.column("locator").take(take) if n else string_column([]),
        "split": string_column(plan.splits[order].tolist()),
        "derived_from": string_column(derived if derived is not None else [None] * n),
        "augmentation": string_column([plan.augmentation[i] for i in order] if plan.augmentation is not None else [None] * n),
        "content_hash": string_column([h.hex() for h in table.column("content_hash").take(take).to_pylist()] if n else []),
        "original_width": table.column("original_width").take(take) if n else numpy_column(np.zeros(0, np.int32)),
        "original_height": table.column("original_height").take(take) if n else numpy_column(np.zeros(0, np.int32)),
    }
    if plan.weights is not None:
        columns["weight"] = numpy_column(plan.weights[order].astype(np.float32))
    provenance = [json.loads(p) for p in table.column("provenance").take(take).to_pylist()] if n else []
    # Every row says whether it is synthetic (a generator's sample), so
    # readers need not know which sources generate.
    for p in provenance:
        p["synthetic"] = bool(p.get("synthetic", False))
    if not n:
        columns["synthetic"] = bool_column([])
    for name in sorted({k for p in provenance for k in p}):
        column = name if name not in columns else f"provenance_{name}"
        values = [p.get(name) for p in provenance]
        typed = python_column(values)
        if typed is not None:
            columns[column] = typed
            continue
        try:  # nested values: pyarrow infers lists and structs
            columns[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[column] = string_column([None if v is None else str(v) for v in values])
    pq.write_table(pa.table(columns), path)


def _write_rejections(path: Path, rejections: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for rec in rejections:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")


PUBLISHING_MARKER = "publishing"


def _recover_interrupted_publish(write_dir: Path, out: Path) -> None:
    """A build killed while publishing has moved its shards into place but
    not written the manifest: move them back so the write stage reuses them."""
    if (write_dir / PUBLISHING_MARKER).exists() and not (write_dir / SHARDS_DIR).exists() and (out / SHARDS_DIR).is_dir():
        os.rename(out / SHARDS_DIR, write_dir / SHARDS_DIR)
    (write_dir / PUBLISHING_MARKER).unlink(missing_ok=True)


def _publish(out: Path, write_dir: Path, manifest: dict[str, Any]) -> None:
    """Move the finished build into place, the manifest last.

    The old manifest goes first, so that at no moment does a manifest point at
    shards of another build."""
    try:
        (write_dir / PUBLISHING_MARKER).touch()
        (out / MANIFEST_FILE).unlink(missing_ok=True)
        old_shards = out / SHARDS_DIR
        if old_shards.exists():
            trash = write_dir.parent / f"trash-{os.getpid()}-{time.time_ns()}"
            os.rename(old_shards, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.rename(write_dir / SHARDS_DIR, old_shards)
        os.replace(write_dir / SAMPLES_FILE, out / SAMPLES_FILE)
        os.replace(write_dir / REJECTED_FILE, out / REJECTED_FILE)
        write_json_atomic(out / MANIFEST_FILE, manifest)
    except OSError as exc:
        raise BuildError(f"--output: could not publish the dataset in {out}: {exc}") from None
