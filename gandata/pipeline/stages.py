"""The parallel stages as executor tasks: ingest (one task per source partition) and
write (one task per planned shard).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gandata.config import BuildConfig
from gandata.dataset.manifest import SHARDS_DIR
from gandata.dataset.normalize import Normalization
from gandata.ingest.partition import IngestTask, ingest_partition
from gandata.ingest.staging import STAGING_VERSION, partition_dir_name
from gandata.pipeline.executors import Executor
from gandata.pipeline.inputs import digest
from gandata.plan.merge import PLAN_ONLY_OPTIONS
from gandata.plan.table import Plan, StagedTable
from gandata.records import ProgressFn
from gandata.sources.base import Source
from gandata.write.publish import recover_interrupted_publish
from gandata.write.shards import ShardTask, write_shard


def run_ingest(
    config: BuildConfig, sources: Sequence[Source], staging: Path, executor: Executor, report: ProgressFn,
    first_index: int = 0,
) -> tuple[list[str], list[int], int]:
    tasks: list[IngestTask] = []
    for si, (spec, source) in enumerate(zip(config.sources, sources), start=first_index):
        # Staged partitions depend only on the source and the image options,
        # so changing e.g. normalization or shard size reuses them.
        spec_json = {k: v for k, v in spec.to_json().items() if k not in PLAN_ONLY_OPTIONS}
        ingest_key = digest({"source": spec_json, "content": source.fingerprint(), "image": config.to_json()["image"],
                              "staging": STAGING_VERSION,
                              # --retry-failed: re-stage, so failed downloads are tried again.
                              **({"retry": True} if config.retry_failed else {})})
        source_dir = staging / f"ingest-{ingest_key}"
        source_dir.mkdir(parents=True, exist_ok=True)
        for partition in source.partitions():
            part_dir = source_dir / partition_dir_name(si, partition.index)
            tasks.append(IngestTask(source=source, source_index=si, partition=partition, image=config.image, part_dir=str(part_dir)))
    # Progress in images: the partitions' input counts when every source
    # knows them (a reused partition counts as its inputs), else images seen
    # so far against an unknown total.
    sizes = [t.partition.num_inputs for t in tasks]
    total = sum(s for s in sizes if s is not None) if None not in sizes else None
    report("ingest", 0, total)
    reused = done = 0
    for i, result in executor.imap(ingest_partition, tasks):
        reused += int(result.reused)
        # A reused partition reports -1 inputs seen (its counts are not re-read).
        done += sizes[i] if total is not None else max(result.num_staged + result.num_rejected, 0)
        report("ingest", done, total)
    return [t.part_dir for t in tasks], [t.source_index for t in tasks], reused


def run_write(
    config: BuildConfig, staged: StagedTable, plan: Plan, normalization: Normalization, write_dir: Path, out: Path,
    executor: Executor, report: ProgressFn,
) -> tuple[list[Any], int]:
    """Write every planned shard (one executor task each) into ``write_dir``;
    returns the shard results in shard order and how many were reused."""
    shard_dir = write_dir / SHARDS_DIR
    recover_interrupted_publish(write_dir, out)
    shard_dir.mkdir(parents=True, exist_ok=True)
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
                augment_seeds=None if plan.augment_seeds is None else plan.augment_seeds[entries],
            )
        )
    total = sum(len(t.labels) for t in tasks)
    report("write", 0, total)
    results: list[Any] = [None] * len(tasks)
    reused = done = 0
    for i, result in executor.imap(write_shard, tasks):
        results[i] = result
        reused += int(result.reused)
        done += len(tasks[i].labels)
        report("write", done, total)
    return results, reused
