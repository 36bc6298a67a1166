"""The full ``gandata stats`` audit, of a built dataset or of raw sources.

A built dataset is read from its manifest, samples.parquet and (for the
diversity figures and the sample grid) a few images per class from its
shards. Raw sources (``gandata stats ./folder``) go through the pipeline's
own ingest into a temporary staging directory, so the counts are exactly
what a build would keep: rejections, exact duplicates and labels included.
That costs a decode of every image (no listing shortcut), in exchange for
one code path and true numbers.

Diversity per class: the mean pairwise RMS distance between 8x8 grayscale
thumbnails of up to ``DIVERSITY_SAMPLES`` samples (0 = all identical, about
0.3 for unrelated natural images), and the share of the class's originals
that sit in a duplicate group (same content hash, or same near-duplicate
cluster when the cleaning step recorded one).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gandata.dataset.manifest import SAMPLES_FILE, read_manifest
from gandata.errors import ConfigError
from gandata.ingest.staging import open_images, read_rejections
from gandata.plan.table import StagedTable, channel_stats, resolve_classes
from gandata.stats.balance import ClassBalance, balance_of
from gandata.stats.figures import DEFAULT_BETA, DEFAULT_FLOOR
from gandata.util.arrow import read_parquet

DIVERSITY_SAMPLES = 64
GRID_SAMPLES = 8
# samples.parquet columns the cleaning step may add for near-duplicate clusters.
CLUSTER_COLUMNS = ("cluster_id", "cluster", "near_duplicate_cluster")


@dataclass
class Audit:
    """Everything ``gandata stats`` reports."""

    kind: str  # "dataset" or "source"
    target: str
    balance: ClassBalance
    beta: float = DEFAULT_BETA
    floor: int = DEFAULT_FLOOR
    counts_before_balancing: dict[str, int] | None = None
    counts_deduplicated: dict[str, int] | None = None
    diversity: dict[str, float | None] = field(default_factory=dict)
    duplicate_share: dict[str, float] = field(default_factory=dict)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    num_unlabeled: int = 0
    image_shape: list[int] | None = None
    # Up to GRID_SAMPLES uint8 HWC images per class, for --plot.
    samples: dict[str, list[np.ndarray]] = field(default_factory=dict)
    # Synthetic samples per class (generator output, samples.parquet
    # ``synthetic``); None when the dataset holds none.
    synthetic: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        data = self.balance.to_json(beta=self.beta, floor=self.floor)
        for entry in data["classes"]:
            name = entry["name"]
            entry["diversity"] = self.diversity.get(name)
            entry["duplicate_share"] = self.duplicate_share.get(name)
            if self.counts_deduplicated is not None:
                entry["count_deduplicated"] = self.counts_deduplicated.get(name, 0)
            if self.synthetic is not None:
                entry["synthetic"] = self.synthetic.get(name, 0)
                entry["synthetic_share"] = self.synthetic.get(name, 0) / entry["count"] if entry["count"] else 0.0
        data.update({
            "kind": self.kind,
            "target": self.target,
            "counts_before_balancing": self.counts_before_balancing,
            "counts_deduplicated": self.counts_deduplicated,
            "num_unlabeled": self.num_unlabeled,
            "image_shape": self.image_shape,
            "mean": self.mean,
            "std": self.std,
            "rejections": self.rejections,
            "sources": self.sources,
            "splits": self.splits,
        })
        if self.synthetic is not None:
            data["num_synthetic"] = sum(self.synthetic.values())
            data["synthetic_share"] = {e["name"]: e["synthetic_share"] for e in data["classes"]}
        return data


def thumbnail_diversity(images: np.ndarray) -> float | None:
    """Mean pairwise RMS distance of 8x8 grayscale thumbnails, [0, 1] scale.
    ``images``: uint8 [N, H, W, C]. None for fewer than two images."""
    if len(images) < 2:
        return None
    from PIL import Image

    thumbs = []
    for img in images:
        gray = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).convert("L")
        thumbs.append(np.asarray(gray.resize((8, 8), Image.BOX), dtype=np.float64).ravel() / 255.0)
    x = np.stack(thumbs)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).mean(axis=2))
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


def _duplicate_figures(names: Sequence[str | None], groups: Sequence[Any]) -> tuple[dict[str, int], dict[str, float]]:
    """Per class: count with each duplicate group counted once, and the share
    of samples inside a group of two or more."""
    sizes = Counter(zip(names, groups))
    dedup: Counter[str] = Counter()
    in_group: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for (name, _), size in sizes.items():
        if name is None:
            continue
        dedup[name] += 1
        total[name] += size
        if size > 1:
            in_group[name] += size
    return dict(dedup), {k: in_group[k] / total[k] for k in total}


def _pick(indices_by_class: dict[str, list[int]], limit: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, idx in indices_by_class.items():
        arr = np.asarray(idx, dtype=np.int64)
        out[name] = np.sort(arr[rng.permutation(len(arr))[:limit]]) if len(arr) > limit else arr
    return out


def audit_dataset(root: str | os.PathLike[str], beta: float = DEFAULT_BETA, floor: int = DEFAULT_FLOOR,
                  split: str | None = None) -> Audit:
    """Audit a built dataset (all splits, or one with ``split``). Raises
    ConfigError naming ``--split`` for a split the dataset does not have."""
    from gandata.dataset.reader import open_dataset

    manifest = read_manifest(root)
    if split is not None:
        known = sorted({s.get("split", "train") for s in manifest["shards"]} | set(manifest.get("splits") or {}))
        if split not in known:
            raise ConfigError(f"--split: {root} has no split {split!r} (its splits: {', '.join(known) or 'none'})")
    classes = list(manifest["classes"])
    table = read_parquet(Path(root) / SAMPLES_FILE)
    cols = set(table.column_names)
    rows = table.to_pydict()
    n = table.num_rows
    keep = [split is None or rows["split"][i] == split for i in range(n)]
    names = [rows["class_name"][i] for i in range(n) if keep[i]]
    counts = {c: 0 for c in classes}
    counts.update(Counter(x for x in names if x is not None))
    derived = [rows["derived_from"][i] for i in range(n) if keep[i]] if "derived_from" in cols else [None] * len(names)
    originals = [i for i in range(n) if keep[i] and ("derived_from" not in cols or rows["derived_from"][i] is None)]
    before = None
    if any(d is not None for d in derived):
        before = {c: 0 for c in classes}
        before.update(Counter(rows["class_name"][i] for i in originals if rows["class_name"][i] is not None))
    cluster_col = next((c for c in CLUSTER_COLUMNS if c in cols), None)
    groups = [rows[cluster_col][i] if cluster_col and rows[cluster_col][i] is not None else rows["content_hash"][i] for i in originals]
    dedup, dup_share = _duplicate_figures([rows["class_name"][i] for i in originals], groups)
    audit = Audit(
        kind="dataset", target=str(root), balance=balance_of(counts), beta=beta, floor=floor,
        counts_before_balancing=before, counts_deduplicated={c: dedup.get(c, 0) for c in classes},
        duplicate_share=dup_share, mean=list(manifest.get("mean", [])), std=list(manifest.get("std", [])),
        rejections=dict(manifest.get("rejections", {})), sources=list(manifest.get("sources", [])),
        splits=dict(manifest.get("splits", {})), num_unlabeled=int(manifest.get("num_unlabeled", 0)),
        image_shape=list(manifest["image_shape"]),
    )
    if "synthetic" in cols and any(rows["synthetic"][i] for i in range(n) if keep[i]):
        synthetic = {c: 0 for c in classes}
        synthetic.update(Counter(rows["class_name"][i] for i in range(n)
                                 if keep[i] and rows["synthetic"][i] and rows["class_name"][i] is not None))
        audit.synthetic = synthetic
    # Pixels for diversity and the grid: originals only, read split by split.
    by_split: dict[str, dict[str, list[int]]] = {}
    offsets: dict[str, dict[int, int]] = {}
    shards = manifest["shards"]
    for s_name in {shards[rows["shard"][i]].get("split", "train") for i in originals}:
        pos, running = {}, 0
        for k, entry in enumerate(shards):
            if entry.get("split", "train") == s_name:
                pos[k] = running
                running += int(entry["num_samples"])
        offsets[s_name] = pos
    for i in originals:
        name = rows["class_name"][i]
        if name is None:
            continue
        s_name = shards[rows["shard"][i]].get("split", "train")
        by_split.setdefault(name, {}).setdefault(s_name, []).append(offsets[s_name][rows["shard"][i]] + rows["row"][i])
    datasets = {s: open_dataset(root, split=s) for s in offsets}
    chosen: dict[str, list[tuple[str, int]]] = {}
    for name in classes:
        pooled = [(s, j) for s, idx in sorted(by_split.get(name, {}).items()) for j in idx]
        pick = _pick({name: list(range(len(pooled)))}, DIVERSITY_SAMPLES, manifest.get("seed", 0))[name]
        chosen[name] = [pooled[int(p)] for p in pick]
    # Read in (split, index) order across classes so each shard loads once.
    wanted = sorted({where for picks in chosen.values() for where in picks})
    pixels = {}
    for s, j in wanted:
        ds = datasets[s]
        pixels[(s, j)] = np.ascontiguousarray(ds.to_uint8(ds[j][0]).transpose(1, 2, 0))
    for name in classes:
        images = [pixels[where] for where in chosen[name]]
        stack = np.stack(images) if images else np.zeros((0, 1, 1, 1), np.uint8)
        audit.diversity[name] = thumbnail_diversity(stack)
        audit.samples[name] = images[:GRID_SAMPLES]
    return audit




def audit_staged(config: Any, staged: StagedTable, part_dirs: Sequence[str], declared_classes: Sequence[Sequence[str] | None],
                 beta: float = DEFAULT_BETA, floor: int = DEFAULT_FLOOR) -> Audit:
    """Audit staged raw sources (``gandata stats SOURCES``): counts, duplicate
    figures, rejections, statistics and sample grids, as a build would see them."""
    n = staged.num_rows
    labels = staged.table.column("label").to_pylist() if n else []
    classes = resolve_classes(labels, declared_classes)
    counts = {c: 0 for c in classes}
    counts.update(Counter(x for x in labels if x is not None))
    hashes = staged.table.column("content_hash").to_pylist() if n else []
    dedup, dup_share = _duplicate_figures(labels, hashes)
    rejections: list[dict[str, Any]] = []
    for part_dir in part_dirs:
        rejections.extend(read_rejections(Path(part_dir)))
    rows = np.arange(n)
    mean, std = channel_stats(staged, rows, config.image.size_px) if n else ([], [])
    source_index = staged.column("source_index") if n else np.zeros(0, np.int32)
    rejected_by_source = Counter(r.get("uri", "") for r in rejections)
    audit = Audit(
        kind="source", target=" ".join(staged.source_uris), balance=balance_of(counts), beta=beta,
        floor=floor, counts_deduplicated={c: dedup.get(c, 0) for c in classes}, duplicate_share=dup_share,
        mean=mean, std=std, rejections=dict(sorted(Counter(r["reason"] for r in rejections).items())),
        sources=[{"uri": uri, "num_samples": int((source_index == i).sum()),
                  "num_rejected": int(rejected_by_source.get(uri, 0))} for i, uri in enumerate(staged.source_uris)],
        num_unlabeled=sum(1 for x in labels if x is None),
        image_shape=[config.image.channels, config.image.size_px, config.image.size_px],
    )
    parts = staged.column("part") if n else np.zeros(0)
    prow = staged.column("row") if n else np.zeros(0)
    by_class: dict[str, list[int]] = {}
    for i, name in enumerate(labels):
        if name is not None:
            by_class.setdefault(name, []).append(i)
    picks = _pick(by_class, DIVERSITY_SAMPLES, config.seed)
    for name in classes:
        images = [np.array(open_images(Path(part_dirs[int(parts[i])]))[int(prow[i])]) for i in picks.get(name, [])]
        stack = np.stack(images) if images else np.zeros((0, 1, 1, 1), np.uint8)
        audit.diversity[name] = thumbnail_diversity(stack)
        audit.samples[name] = images[:GRID_SAMPLES]
    return audit
