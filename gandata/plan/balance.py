"""Class balance: the figures of ``gandata stats`` and the balancing step.

Figures (pure functions of the class counts): imbalance ratio, normalized
Shannon entropy, effective number of classes exp(H), Gini coefficient and
the effective number of samples of Cui et al. (2019), (1 - beta^n)/(1 - beta).

Balancing (``--balance``) runs in the plan step and works on indices only,
never on pixels: undersampling drops planned entries, oversampling repeats
entries (marked as copies, augmented later in the write workers by
gandata.image.augment) and ``weights`` attaches a per-sample weight. The targets
use imbalanced-learn's ``sampling_strategy`` vocabulary. The validation split
is cut first, from the originals, so validation keeps the natural class
proportions and never holds a copy (or the original of a copy), nor a
synthetic sample. Splits a source assigned (``val``, ``test``) are kept as
they are: only the train split is resampled or weighted for balance, and no
sample moves between splits.

``synthesize`` needs pixels from a generator, so the pipeline runs it
(gandata/synthesize.py computes the fill); here it only keeps the synthetic
samples out of the validation split, like every mode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from gandata.config import BuildConfig, parse_sampling_strategy
from gandata.config.model import MAX_OVERSAMPLE_FACTOR
from gandata.dataset.splits import SPLIT_ORDER
from gandata.errors import ConfigError
from gandata.image.augment import check_spec
from gandata.plan.split import (
    NO_SPLIT,
    TRAIN,
    VAL,
    dense_group_ids,
    follow_groups,
    preassigned_splits,
    stratified_split,
)
from gandata.plan.table import (
    Plan,
    StagedTable,
    assign_shards,
    channel_stats,
    synthetic_mask,
)
from gandata.records import Rejection

# --- figures -------------------------------------------------------------------------------------


# --- targets ---------------------------------------------------------------------------------------


def resolve_targets(counts: Mapping[str, int], mode: str, strategy: Any) -> dict[str, int]:
    """Target count per class for ``undersample``/``oversample``, following
    imbalanced-learn: ``auto`` is ``not majority`` when oversampling and
    ``not minority`` when undersampling; a keyword resamples the classes it
    names to the majority (over) or minority (under) count; a {class: count}
    table sets those classes; one count applies to every class (raising the
    smaller ones when oversampling, lowering the larger when undersampling)."""
    strategy = parse_sampling_strategy(strategy)
    targets = dict(counts)
    nonempty = [c for c in counts.values() if c > 0]
    if not nonempty:
        return targets
    over = mode == "oversample"
    hi, lo = max(nonempty), min(nonempty)
    if isinstance(strategy, int):
        return {k: (max(c, strategy) if over else min(c, strategy)) for k, c in counts.items()}
    if isinstance(strategy, dict):
        for name, want in strategy.items():
            if name not in counts:
                raise ConfigError(f"--sampling-strategy: no class {name!r} (classes: {', '.join(counts)})")
            have = counts[name]
            if over and want < have:
                raise ConfigError(f"--sampling-strategy: oversampling cannot lower class {name!r} from {have} to {want}")
            if not over and want > have:
                raise ConfigError(f"--sampling-strategy: undersampling cannot raise class {name!r} from {have} to {want}")
            targets[name] = want
        return targets
    if strategy == "auto":
        strategy = "not majority" if over else "not minority"
    if strategy == ("majority" if over else "minority"):
        # imbalanced-learn refuses these too: they would change nothing.
        raise ConfigError(f"--sampling-strategy: {strategy!r} changes nothing when {'oversampling' if over else 'undersampling'}")
    goal = hi if over else lo
    for name, c in counts.items():
        selected = {
            "all": True,
            "minority": c == lo,
            "majority": c == hi,
            "not minority": c != lo,
            "not majority": c != hi,
        }[strategy]
        if selected and c > 0:
            targets[name] = max(c, goal) if over else min(c, goal)
    return targets


def check_target_bound(counts: Mapping[str, int], targets: Mapping[str, int], allow_huge: bool) -> None:
    """Refuse targets summing to more than MAX_OVERSAMPLE_FACTOR times the
    originals (every planned sample costs memory and a write) unless
    --allow-huge-oversample: a stray zero must be a clear error, not an OOM."""
    originals = sum(counts.values())
    planned = sum(max(targets.get(k, c), c) for k, c in counts.items())
    limit = MAX_OVERSAMPLE_FACTOR * max(originals, 1)
    if planned > limit and not allow_huge:
        raise ConfigError(
            f"--sampling-strategy: the targets ask for {planned} samples from {originals} originals, more than "
            f"{MAX_OVERSAMPLE_FACTOR} times the dataset; lower the targets or pass --allow-huge-oversample"
        )


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights making every class equally likely under a weighted
    sampler: N / (K * n_c), so each class's weights sum to N / K. Unlabeled
    samples weigh 1."""
    weights = np.ones(len(labels), dtype=np.float64)
    mask = labels >= 0
    if mask.any():
        classes, counts = np.unique(labels[mask], return_counts=True)
        per = np.zeros(int(classes.max()) + 1, dtype=np.float64)
        per[classes] = mask.sum() / (len(classes) * counts)
        weights[mask] = per[labels[mask]]
    return weights


# --- the plan step ---------------------------------------------------------------------------------


def _class_counts(labels: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    return {name: int((labels == i).sum()) for i, name in enumerate(classes)}


def _rejections(staged: Any, rows: np.ndarray, reason: str, detail: str) -> list[Rejection]:
    """One rejection per staged row in ``rows`` (strings read for those rows only)."""
    sources = staged.column("source_index")[rows].tolist() if len(rows) else []
    return [
        Rejection(key=key, locator=locator, reason=reason, detail=f"{key}: {detail}", source=staged.source_uris[int(src)])
        for key, locator, src in zip(staged.strings("key", rows), staged.strings("locator", rows), sources)
    ]


def _undersample(idx: np.ndarray, target: int, groups: np.ndarray, by_cluster: bool, rng: np.random.Generator) -> np.ndarray:
    """Keep ``target`` of the entries ``idx``: seeded random, optionally one
    member per group first (so clusters of copies shrink before unique images)."""
    perm = idx[rng.permutation(len(idx))]
    if by_cluster:
        seen: dict[int, int] = {}
        depth = np.empty(len(perm), dtype=np.int64)
        for j, g in enumerate(groups[perm].tolist()):
            depth[j] = seen.get(g, 0)
            seen[g] = depth[j] + 1
        perm = perm[np.argsort(depth, kind="stable")]
    return np.sort(perm[:target])


def apply_balance(plan: Plan, staged: StagedTable, config: BuildConfig) -> Plan:
    """Cut the validation split and balance the training split of ``plan``.

    Returns the plan unchanged when neither is asked for."""
    bc = config.balance
    if bc.mode == "none" and bc.val_fraction == 0:
        return plan
    if bc.mode != "none" and not plan.classes:
        raise ConfigError(f"--balance {bc.mode}: the sources yield no class labels, so there is nothing to balance")
    rejections = list(plan.rejections)
    rows, labels = _drop_small_classes(plan, staged, bc, rejections)
    split, groups = _split_codes(plan, staged, config, rows, labels)
    rng = np.random.default_rng([config.seed, 0xBA1])
    keep, copies = _resample(plan.classes, staged, bc, rows, labels, groups, split, rng, rejections)
    entries = _Entries.originals(rows, labels, keep, split)
    spec = entries.add_copies(copies, bc, rng)
    return _assemble(plan, staged, config, entries, spec, rng, rejections)


def _drop_small_classes(plan: Any, staged: Any, bc: Any, rejections: list[Rejection]) -> tuple[np.ndarray, np.ndarray]:
    """Refuse (or with ``drop_small_classes`` drop) classes with fewer than
    ``min_class_count`` originals; returns the rows and labels left."""
    rows, labels = plan.rows, plan.labels
    if bc.mode == "none":
        return rows, labels
    counts = _class_counts(labels, plan.classes)
    small = {k: c for k, c in counts.items() if c < bc.min_class_count}
    if small and not bc.drop_small_classes:
        listed = ", ".join(f"{k!r} ({c})" for k, c in small.items())
        raise ConfigError(
            f"--min-class-count: class(es) {listed} have fewer than {bc.min_class_count} originals to balance; "
            "add images, lower --min-class-count, or pass --drop-small-classes"
        )
    if not small:
        return rows, labels
    dropped = np.isin(labels, [plan.classes.index(k) for k in small])
    detail = f"class has fewer than {bc.min_class_count} originals (--drop-small-classes)"
    rejections.extend(_rejections(staged, np.sort(rows[dropped]), "small_class", detail))
    return rows[~dropped], labels[~dropped]


def _split_codes(plan: Any, staged: Any, config: BuildConfig, rows: np.ndarray,
                 labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The split code of every entry (gandata.plan.split: the source's split
    where it gave one, else the stratified validation cut, duplicate groups
    on one side) and the group id of every entry."""

    cluster_ids = plan.cluster_ids
    groups = dense_group_ids(staged.content_groups()[rows], None if cluster_ids is None else np.asarray(cluster_ids)[rows])
    # Validation stays real: synthetic samples (gan: sources, --balance
    # synthesize) are split off before the cut and always train.
    synthetic = synthetic_mask(staged)[rows] if len(rows) else np.zeros(0, dtype=bool)
    split = np.full(len(rows), TRAIN, dtype=np.int8)
    free = ~synthetic
    assigned = preassigned_splits(staged)
    if assigned is not None and len(rows):
        codes = np.where(free, assigned[rows], NO_SPLIT).astype(np.int8)
        codes = np.where(codes >= 0, codes, follow_groups(groups, codes, free & (codes < 0)))
        split = np.where(codes >= 0, codes, split).astype(np.int8)
        free &= codes < 0
    real = np.flatnonzero(free)
    is_val = stratified_split(labels[real], groups[real], config.balance.val_fraction, config.seed)
    split[real[is_val]] = VAL
    return split, groups


def _resample(classes: Sequence[str], staged: Any, bc: Any, rows: np.ndarray, labels: np.ndarray, groups: np.ndarray,
              split: np.ndarray, rng: np.random.Generator, rejections: list[Rejection]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Under- or oversample the training entries per class: the kept mask
    and the copies to add as (entry index of the original, copy number)."""
    keep = np.ones(len(rows), dtype=bool)
    copies: list[tuple[int, int]] = []
    if bc.mode not in ("undersample", "oversample"):
        return keep, copies
    train = np.flatnonzero(split == TRAIN)
    counts = _class_counts(labels[train], classes)
    targets = resolve_targets(counts, bc.mode, bc.sampling_strategy)
    check_target_bound(counts, targets, bc.allow_huge_oversample)
    for cid, name in enumerate(classes):
        idx = train[labels[train] == cid]
        want = targets.get(name, len(idx))
        if bc.mode == "undersample" and want < len(idx):
            kept = _undersample(idx, want, groups, bc.undersample_by_cluster, rng)
            gone = np.setdiff1d(idx, kept)
            keep[gone] = False
            rejections.extend(_rejections(staged, np.sort(rows[gone]), "undersampled", f"class {name!r} undersampled to {want}"))
        elif bc.mode == "oversample" and want > len(idx) and len(idx):
            # Cycle through a seeded permutation so each original is copied
            # floor or ceil(need / n) times, never one image many times.
            need = want - len(idx)
            order = idx[rng.permutation(len(idx))]
            copies.extend((int(order[j % len(idx)]), j // len(idx) + 1) for j in range(need))
    return keep, copies


@dataclass
class _Entries:
    """The plan's entries before ordering: originals, then oversampled copies."""

    rows: np.ndarray
    labels: np.ndarray
    derived: np.ndarray
    copy_numbers: np.ndarray
    augmentation: list[str | None]
    seeds: np.ndarray
    keep: np.ndarray
    split: np.ndarray  # split code per entry (an index into SPLIT_ORDER)
    has_copies: bool = False

    @classmethod
    def originals(cls, rows: np.ndarray, labels: np.ndarray, keep: np.ndarray, split: np.ndarray) -> "_Entries":
        n = len(rows)
        return cls(rows, labels, np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64), [None] * n,
                   np.zeros(n, dtype=np.int64), keep, split)

    def add_copies(self, copies: list[tuple[int, int]], bc: Any, rng: np.random.Generator) -> str | None:
        """Append the copies (training only, each with its augmentation
        seed); returns the augmentation spec (None: exact copies)."""
        if not copies:
            return None
        src = np.array([c[0] for c in copies], dtype=np.int64)
        spec = ",".join(bc.augmentations) if bc.augment and bc.augmentations else None
        copy_seeds = rng.integers(0, 2**31 - 1, size=len(copies), dtype=np.int64)
        rows = self.rows
        self.rows = np.concatenate([rows, rows[src]])
        self.labels = np.concatenate([self.labels, self.labels[src]])
        self.derived = np.concatenate([self.derived, rows[src]])
        self.copy_numbers = np.concatenate([self.copy_numbers, [c[1] for c in copies]])
        self.augmentation = self.augmentation + [None if spec is None else f"{spec}@seed={int(s)}" for s in copy_seeds]
        self.seeds = np.concatenate([self.seeds, copy_seeds])
        self.keep = np.concatenate([self.keep, np.ones(len(copies), dtype=bool)])
        self.split = np.concatenate([self.split, np.full(len(copies), TRAIN, dtype=np.int8)])
        self.has_copies = True
        return spec


def _assemble(plan: Any, staged: Any, config: BuildConfig, entries: _Entries, spec: str | None,
              rng: np.random.Generator, rejections: list[Rejection]) -> Any:
    """Output order (the training entries shuffled, copies among originals,
    then validation, then test, each with the build seed), weights,
    statistics, shards."""

    parts, names = [], []
    for code, name in enumerate(SPLIT_ORDER):
        idx = np.flatnonzero(entries.keep & (entries.split == code))
        # train and val always draw their permutation (the order builds
        # without a test split have always had); test only when present.
        if code in (TRAIN, VAL) or len(idx):
            parts.append(idx[rng.permutation(len(idx))])
            names.extend([name] * len(idx))
    order = np.concatenate(parts).astype(np.int64)
    splits = np.array(names, dtype=object)
    out_rows, out_labels = entries.rows[order], entries.labels[order]
    weights = None
    if config.balance.mode == "weights":
        weights = np.ones(len(order), dtype=np.float64)
        for split in SPLIT_ORDER:
            m = splits == split
            weights[m] = class_weights(out_labels[m])
    mean, std = channel_stats(staged, out_rows, config.image.size_px)
    copies = entries.has_copies
    if copies and spec is not None:
        check_spec(spec)
    return replace(
        plan, rows=out_rows.astype(np.int64), labels=out_labels, splits=splits,
        shards=assign_shards(splits, config.out.shard_size), rejections=rejections, mean=mean, std=std,
        weights=weights, derived_from=entries.derived[order] if copies else None,
        augmentation=[entries.augmentation[i] for i in order] if copies else None,
        copy_numbers=entries.copy_numbers[order] if copies else None, augment_seeds=entries.seeds[order] if copies else None,
        augment_spec=spec if copies else None,
    )
