"""Assemble the manifest of a finished build (docs/FORMAT.md): shapes, classes, shards
with their hashes, splits, statistics, sources, licences, rejections and the config.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gandata import __version__
from gandata.config import BuildConfig
from gandata.dataset.manifest import FORMAT_NAME, FORMAT_VERSION, SHARDS_DIR
from gandata.dataset.normalize import Normalization
from gandata.dataset.splits import SPLIT_ORDER
from gandata.image.augment import library_versions
from gandata.plan.split import preassigned_splits
from gandata.plan.table import Plan, StagedTable
from gandata.sources.base import Source
from gandata.write.provenance_summary import manifest_provenance


def assemble_manifest(
    config: BuildConfig, fingerprint: str, sources: Sequence[Source], staged: StagedTable, plan: Plan,
    normalization: Normalization, shard_results: Sequence[Any], rejections: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a finished build (docs/FORMAT.md), from its plan and
    the results of its shards."""
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
        **_preassigned(staged, plan),
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
        **({"clean": plan.clean_summary} if plan.clean_summary else {}),
        **_augmented_by(plan),
        "build_fingerprint": fingerprint,
        "config": config.to_json(),
    }


def _preassigned(staged: StagedTable, plan: Plan) -> dict[str, Any]:
    """``{"preassigned_splits": {split: n}}``: the samples whose split their
    source gave (copies not counted), so a reader can tell a source's split
    from a --val-fraction cut; empty (no key) when no source gave one."""
    assigned = preassigned_splits(staged)
    if assigned is None or not len(plan.rows):
        return {}
    codes = assigned[plan.rows]
    original = plan.derived_from < 0 if plan.derived_from is not None else np.ones(len(codes), dtype=bool)
    counts = {name: int(((codes == code) & original & (plan.splits == name)).sum()) for code, name in enumerate(SPLIT_ORDER)}
    counts = {name: n for name, n in counts.items() if n}
    return {"preassigned_splits": counts} if counts else {}


def _augmented_by(plan: Plan) -> dict[str, Any]:
    """``{"augmented_by": {library: version}}`` when the build wrote augmented
    copies, whose pixels those versions drew; empty (no key) otherwise."""
    if plan.augmentation is None or all(spec is None for spec in plan.augmentation):
        return {}
    return {"augmented_by": library_versions()}
