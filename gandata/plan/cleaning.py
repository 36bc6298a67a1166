"""Thresholds -> rejections: the cleaning part of the plan step.

``apply_cleaning`` runs after exact-duplicate removal, on the staged
metadata only (scores, pHash, thumbnail, original size, label):

1. quality checks in a fixed order (the first failing check is the reason):
   ``bad_aspect``, ``low_information``, ``too_dark``, ``too_light``,
   ``blurry``, ``grayscale`` (dropped only with ``drop_grayscale``);
2. near duplicates: pHash candidates within ``near_dup_radius`` bits
   (``neardup.candidate_pairs``), confirmed by the correlation of the 16x16
   thumbnails and a mean-colour match, grouped with union-find together with the exact-duplicate
   groups; one member per cluster is kept (largest original resolution, then
   sharpest, then first by source and key);
3. label conflicts: a cluster (exact or near) spanning several labels is
   dropped whole (``label_conflicts = "drop"``) or keeps only its strict
   majority label (``"majority"``; a tie drops the cluster).

A check that would remove more than ``max_removed_share`` of a class (of at
least ``MIN_CLASS_FOR_GUARD`` samples) raises ``CleanError``: its threshold is
miscalibrated for this data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gandata.clean.neardup import candidate_pairs, cluster_labels
from gandata.config import CleanConfig
from gandata.errors import ConfigError
from gandata.records import Rejection
from gandata.util.arrow import numpy_column, to_numpy

__all__ = ["CleanError", "CleanOutcome", "MIN_CLASS_FOR_GUARD", "apply_cleaning", "quality_flags"]

MIN_CLASS_FOR_GUARD = 10
# Largest per-channel difference of mean colour (0-1 scale) between near
# duplicates; re-encoding and rescaling move it by well under 0.01.
NEAR_DUP_MAX_COLOR_SHIFT = 0.05

# check -> (score column, direction, config field, CLI option)
_CHECKS: dict[str, tuple[str, str, str, str]] = {
    "bad_aspect": ("aspect", "below", "min_aspect", "--min-aspect"),
    "low_information": ("score_std", "below", "min_std", "--min-std"),
    "too_dark": ("score_p99", "below", "dark_p99", "--dark-p99"),
    "too_light": ("score_p01", "above", "light_p01", "--light-p01"),
    "blurry": ("score_blur", "below", "min_blur_ratio", "--min-blur-ratio"),
    "grayscale": ("score_color", "below", "gray_color", "--gray-color"),
}


class CleanError(ConfigError):
    """A cleaning threshold would remove too much of a class."""


@dataclass
class CleanOutcome:
    keep: np.ndarray
    rejections: list[Rejection]
    # Reported, not removed: rows flagged grayscale while drop_grayscale is off.
    flagged: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    # Near-duplicate cluster per staged row (-1: in no cluster), for the split.
    cluster_ids: np.ndarray | None = None


def _column(table: Any, name: str, n: int, fill: float) -> np.ndarray:
    if name not in table.column_names:
        return np.full(n, fill, np.float64)
    values = to_numpy(table.column(name))
    return np.where(np.isnan(values.astype(np.float64)), fill, values.astype(np.float64))


def quality_flags(table: Any, config: CleanConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """check -> (failing mask, score) for every enabled quality check."""
    n = table.num_rows
    w = to_numpy(table.column("original_width")).astype(np.float64)
    h = to_numpy(table.column("original_height")).astype(np.float64)
    aspect = np.minimum(w, h) / np.maximum(np.maximum(w, h), 1.0)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for check, (column, direction, option, _) in _CHECKS.items():
        if check in config.skip:
            continue
        if column == "aspect":
            score = aspect
        else:
            # A missing score (a grayscale build has no colour score) never fails.
            neutral = -np.inf if direction == "above" else np.inf
            score = _column(table, column, n, neutral)
        limit = getattr(config, option)
        fails = score < limit if direction == "below" else score > limit
        out[check] = (fails, score)
    return out


def _guard(check: str, mask: np.ndarray, labels: list[Any], alive: np.ndarray, config: CleanConfig,
           synthetic: np.ndarray | None = None) -> None:
    if synthetic is not None:
        # The guard catches thresholds miscalibrated for the real data; a
        # generator's samples removed in bulk (a collapsed GAN's near
        # duplicates) are a fill shortfall, not a reason to stop.
        alive = alive & ~synthetic
        mask = mask & ~synthetic
    totals = Counter(labels[i] for i in np.flatnonzero(alive))
    removed = Counter(labels[i] for i in np.flatnonzero(mask & alive))
    for label, count in removed.items():
        total = totals[label]
        if total >= MIN_CLASS_FOR_GUARD and count > config.max_removed_share * total:
            name = "(unlabeled)" if label is None else repr(label)
            option = _CHECKS[check][3] if check in _CHECKS else "--near-dup-radius/--near-dup-similarity"
            raise CleanError(
                f"{option}: the {check} check would remove {count} of {total} samples of class {name} "
                f"(more than --max-removed-share {config.max_removed_share:g}); the threshold looks miscalibrated "
                f"for this data: adjust it, switch the check off (--skip-check {check}), or run `gandata clean "
                f"--report DIR` to look at the scores"
            )


def apply_cleaning(
    staged: Any, keep: np.ndarray, rejections: list[Rejection], config: CleanConfig, size_px: int | None = None,
    keep_exact: bool = False, synthetic: np.ndarray | None = None,
) -> CleanOutcome:
    """Apply the cleaning thresholds to the staged table (``plan.StagedTable``).

    ``synthetic`` marks a generator's samples: they are checked like any
    other, but never count for the ``max_removed_share`` guard, and in a
    duplicate cluster holding real samples they are the ones removed, so
    synthetic samples never change what is kept of the real data.

    ``keep``/``rejections`` come from exact-duplicate removal; the returned
    outcome replaces them (exact-duplicate rejections of a cluster that turns
    out to be a label conflict are rewritten). ``keep_exact`` (the build's
    ``--no-dedup``) keeps copies with the same pixels as the kept member.
    """
    table = staged.table
    n = staged.num_rows
    keep = keep.copy()
    if n == 0 or not config.enabled:
        return CleanOutcome(keep, list(rejections))
    keys = staged.keys()
    labels = table.column("label").to_pylist()
    sources = staged.column("source_index").astype(np.int64)
    locators = table.column("locator").to_pylist()
    uris = staged.source_uris

    def reject(i: int, reason: str, detail: str, score: float | None = None, kept: int | None = None) -> Rejection:
        return Rejection(
            key=keys[i], locator=locators[i], reason=reason, detail=f"{keys[i]}: {detail}",
            source=uris[int(sources[i])], score=None if score is None or not np.isfinite(score) else float(score),
            kept_key=None if kept is None else keys[kept],
        )

    # Exact-duplicate groups found by the plan's exact dedup are regrouped here
    # (with the near duplicates and label conflicts): their members are
    # reinstated, checked, and the cluster's keeper is chosen by the rule.
    row_of = {(int(s), k): i for i, (s, k) in enumerate(zip(sources.tolist(), keys))}
    uri_index = {u: i for i, u in enumerate(uris)}
    exact_i, exact_j, exact_rows = [], [], set()
    kept_rejections: list[Rejection] = []
    content = table.column("content_hash").to_pylist()
    holder = {content[i]: int(i) for i in np.flatnonzero(keep)[::-1]}
    for rej in rejections:
        if rej.reason == "duplicate" and rej.source in uri_index:
            a = row_of.get((uri_index[rej.source], rej.key))
            b = holder.get(content[a]) if a is not None else None
            if a is not None and b is not None:
                exact_i.append(b)
                exact_j.append(a)
                exact_rows.add(a)
                continue
        kept_rejections.append(rej)
    keep[list(exact_rows)] = True

    out: list[Rejection] = []
    flagged: dict[str, np.ndarray] = {}
    summary: dict[str, Any] = {}
    # 1. Quality checks, in order; each sees only the samples still kept.
    for check, (fails, score) in quality_flags(table, config).items():
        column, direction, option, flag = _CHECKS[check]
        if check == "grayscale" and not config.drop_grayscale:
            flagged[check] = fails & keep
            summary["grayscale_kept"] = int(flagged[check].sum())
            continue
        _guard(check, fails, labels, keep, config, synthetic)
        limit = getattr(config, option)
        for i in np.flatnonzero(fails & keep):
            out.append(reject(int(i), check, f"{column.removeprefix('score_')} {score[i]:.4g} is {direction} {flag} {limit:g}", score[i]))
        keep &= ~fails

    # 2. Near duplicates, clustered together with the exact-duplicate groups.
    pi, pj = np.asarray(exact_i, np.int64), np.asarray(exact_j, np.int64)
    near_i = near_j = np.zeros(0, np.int64)
    if config.near_dups and "phash" in table.column_names:
        alive = np.flatnonzero(keep)
        hashes = to_numpy(table.column("phash"))[alive]
        ci, cj = candidate_pairs(hashes, config.near_dup_radius)
        if len(ci):
            thumbs = np.frombuffer(b"".join(table.column("thumb").take(numpy_column(alive)).to_pylist()), np.uint8).reshape(len(alive), -1)
            z = thumbs.astype(np.float32)
            z -= z.mean(axis=1, keepdims=True)
            z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-6
            similarity = np.einsum("ij,ij->i", z[ci], z[cj])
            close = similarity >= config.near_dup_similarity
            if size_px:
                # The thumbnail is luma only: same shape in another colour is
                # not a copy. Compare the mean colours (0-1) as well.
                means = np.array(table.column("channel_sum").take(numpy_column(alive)).to_pylist(), np.float64) / (size_px * size_px)
                close &= np.abs(means[ci] - means[cj]).max(axis=1) <= NEAR_DUP_MAX_COLOR_SHIFT
            near_i, near_j = alive[ci[close]], alive[cj[close]]
    cluster = cluster_labels(n, np.concatenate([pi, near_i]), np.concatenate([pj, near_j]))
    members: dict[int, list[int]] = defaultdict(list)
    in_group = np.zeros(n, bool)
    in_group[pi] = in_group[pj] = in_group[near_i] = in_group[near_j] = True
    for i in np.flatnonzero(in_group & keep):
        members[int(cluster[i])].append(int(i))
    area = to_numpy(table.column("original_width")).astype(np.int64) * to_numpy(table.column("original_height")).astype(np.int64)
    sharp = _column(table, "score_sharpness", n, 0.0)
    near_removed = np.zeros(n, bool)

    def best(rows: list[int]) -> int:
        # Largest original resolution, then sharpest, then first (source, key).
        return min(rows, key=lambda r: (-int(area[r]), -float(sharp[r]), int(sources[r]), keys[r]))

    for rows in members.values():
        generated: list[int] = []
        if synthetic is not None and not synthetic[rows].all():
            generated = [r for r in rows if synthetic[r]]
            rows = [r for r in rows if not synthetic[r]]
        by_label: dict[Any, list[int]] = defaultdict(list)
        for r in rows:
            by_label[labels[r]].append(r)
        conflict: list[int] = []
        if len(by_label) > 1:
            counts = sorted((len(v) for v in by_label.values()), reverse=True)
            if config.label_conflicts == "majority" and counts[0] > counts[1]:
                major = max(by_label, key=lambda k: len(by_label[k]))
                conflict = [r for r in rows if labels[r] != major]
                rows = by_label[major]
            else:
                conflict, rows = rows, []
        kept = best(rows) if rows else None
        for r in conflict:
            others = sorted({str(labels[x]) for x in members[int(cluster[r])] if labels[x] != labels[r]})
            detail = f"duplicate of a sample labelled {', '.join(others)} (label {labels[r]})"
            if kept is not None:
                detail += f"; kept {keys[kept]} (majority label {labels[kept]})"
            out.append(reject(r, "label_conflict", detail, kept=kept))
            keep[r] = False
        for r in rows:
            if r == kept:
                continue
            keep[r] = False
            if content[r] == content[kept]:
                if keep_exact:  # --no-dedup: exact copies stay
                    keep[r] = True
                    continue
                out.append(reject(r, "duplicate", f"same pixels as {keys[kept]}", kept=kept))
            else:
                near_removed[r] = True
                out.append(reject(r, "near_duplicate", f"near duplicate of {keys[kept]}", kept=kept))
        for r in generated:  # a synthetic copy of real data adds nothing
            keep[r] = False
            near_removed[r] = True
            reason = "duplicate" if kept is not None and content[r] == content[kept] else "near_duplicate"
            out.append(reject(r, reason, f"synthetic {reason.replace('_', ' ')} of a real sample"
                              + (f" ({keys[kept]})" if kept is not None else ""), kept=kept))
    _guard_near(near_removed, labels, keep, config, synthetic)
    for check in flagged:  # report what the final dataset keeps
        flagged[check] = flagged[check] & keep
        summary[f"{check}_kept"] = int(flagged[check].sum())
    cluster_ids = np.where(in_group, cluster, -1).astype(np.int64)
    return CleanOutcome(keep, kept_rejections + out, flagged, summary, cluster_ids)


def _guard_near(removed: np.ndarray, labels: list[Any], keep: np.ndarray, config: CleanConfig,
                synthetic: np.ndarray | None = None) -> None:
    _guard("near_duplicate", removed, labels, keep | removed, config, synthetic)
