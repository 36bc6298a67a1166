"""Thresholds -> rejections: the cleaning part of the plan step.

``apply_cleaning`` runs after exact-duplicate removal, on the staged
metadata only (scores, pHash, thumbnail, original size, label):

1. quality checks in a fixed order (the first failing check is the reason):
   ``bad_aspect``, ``low_information``, ``too_dark``, ``too_light``,
   ``blurry``, ``grayscale`` (dropped only with ``drop_grayscale``);
2. near duplicates: pHash candidates within ``near_dup_radius`` bits
   (``neardup.candidate_pairs``), confirmed by the correlation of the 16x16
   thumbnails and a mean-colour match, grouped with union-find together with the exact-duplicate
   groups; one member per cluster is kept: the one with the most native
   information. Its native area is the original area scaled down by its
   fine detail relative to the group's most detailed member (an upscaled or
   heavily compressed copy has more pixels, not more detail); members within
   ``SAME_RESOLUTION_AREA`` of the largest native area tie on resolution and
   the least compressed of them is kept (highest JPEG quality read from the
   file's tables; lossless inputs first), then the larger native area, the
   sharpest, and the first by source and key;
3. label conflicts: a cluster (exact or near) spanning several labels is
   dropped whole (``label_conflicts = "drop"``) or keeps only its strict
   majority label (``"majority"``; a tie drops the cluster).

A check that would remove more than ``max_removed_share`` of a class (of at
least ``MIN_CLASS_FOR_GUARD`` samples) raises ``CleanError``: its threshold is
miscalibrated for this data.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.compute as pc

from gandata.clean.neardup import candidate_pairs, cluster_labels
from gandata.config import CleanConfig
from gandata.errors import ConfigError
from gandata.plan.split import min_per_group
from gandata.plan.table import map_thumbnails, read_thumbnails
from gandata.records import Rejection
from gandata.util.arrow import numpy_column, string_column, to_numpy

__all__ = [
    "CleanError", "CleanOutcome", "MIN_CLASS_FOR_GUARD", "SAME_RESOLUTION_AREA", "apply_cleaning", "native_areas",
    "quality_flags",
]

MIN_CLASS_FOR_GUARD = 10
# Largest per-channel difference of mean colour (0-1 scale) between near
# duplicates; re-encoding and rescaling move it by well under 0.01.
NEAR_DUP_MAX_COLOR_SHIFT = 0.05
# Near-duplicate members whose native areas (see native_areas) are within
# this factor count as the same resolution for the keep rule (about 22% per
# side): a copy resized by a few percent must not win on its pixel count,
# while a copy half the size never ties with its original.
SAME_RESOLUTION_AREA = 1.5
# Candidate pairs confirmed per batch: bounds the float32 copies and keeps
# them in cache (16,384 x 256 floats = 16 MB; 4x larger ran slower).
_CONFIRM_CHUNK = 1 << 14
# Candidate pairs per confirmation task when an executor runs them.
_TASK_PAIRS = 1 << 20

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


def _guard(check: str, mask: np.ndarray, labels: "_Labels", alive: np.ndarray, config: CleanConfig,
           synthetic: np.ndarray | None = None) -> None:
    if synthetic is not None:
        # The guard catches thresholds miscalibrated for the real data; a
        # generator's samples removed in bulk (a collapsed GAN's near
        # duplicates) are a fill shortfall, not a reason to stop.
        alive = alive & ~synthetic
        mask = mask & ~synthetic
    removed_rows = np.flatnonzero(mask & alive)
    if len(removed_rows) == 0:
        return
    totals = np.bincount(labels.codes[alive], minlength=len(labels.names))
    removed = np.bincount(labels.codes[removed_rows], minlength=len(labels.names))
    # Classes in the order their first removed sample appears (the class
    # named in the error is the first one over the limit in staged order).
    present, first = np.unique(labels.codes[removed_rows], return_index=True)
    for code in present[np.argsort(first)].tolist():
        count, total = int(removed[code]), int(totals[code])
        if total >= MIN_CLASS_FOR_GUARD and count > config.max_removed_share * total:
            label = labels.names[code]
            name = "(unlabeled)" if label is None else repr(label)
            option = _CHECKS[check][3] if check in _CHECKS else "--near-dup-radius/--near-dup-similarity"
            raise CleanError(
                f"{option}: the {check} check would remove {count} of {total} samples of class {name} "
                f"(more than --max-removed-share {config.max_removed_share:g}); the threshold looks miscalibrated "
                f"for this data: adjust it, switch the check off (--skip-check {check}), or run `gandata clean "
                f"--report DIR` to look at the scores"
            )


@dataclass
class _Labels:
    """Label per staged row as a code into ``names`` (None is a name too)."""

    codes: np.ndarray
    names: list[Any]

    def __getitem__(self, row: int) -> Any:
        return self.names[int(self.codes[row])]


class _Reporter:
    """Makes the cleaning rejections. Keys and locators are Python strings
    only for the rows it reports (fetched in batches with ``prefetch``)."""

    def __init__(self, staged: Any) -> None:
        self.staged = staged
        self.sources = staged.column("source_index").astype(np.int64)
        self._keys: dict[int, str] = {}
        self._locators: dict[int, str] = {}

    def prefetch(self, rows: Any) -> None:
        missing = [r for r in np.asarray(rows, dtype=np.int64).tolist() if r not in self._keys]
        if missing:
            self._keys.update(zip(missing, self.staged.strings("key", missing)))
            self._locators.update(zip(missing, self.staged.strings("locator", missing)))

    def key(self, row: int) -> str:
        self.prefetch([row])
        return self._keys[row]

    def reject(self, i: int, reason: str, detail: str, score: float | None = None, kept: int | None = None) -> Rejection:
        key = self.key(i)
        return Rejection(
            key=key, locator=self._locators[i], reason=reason, detail=f"{key}: {detail}",
            source=self.staged.source_uris[int(self.sources[i])],
            score=None if score is None or not np.isfinite(score) else float(score),
            kept_key=None if kept is None else self.key(kept),
        )


@dataclass
class _Cleaning:
    """The state the cleaning steps share: the kept mask they narrow and
    the rejections, flags and summary they add to."""

    staged: Any
    config: CleanConfig
    keep: np.ndarray
    labels: _Labels
    groups: np.ndarray  # exact content group per staged row
    report: _Reporter
    synthetic: np.ndarray | None
    executor: Any = None
    out: list[Rejection] = field(default_factory=list)
    flagged: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    # Per row, for choosing a keeper: original pixel area, sharpness, fine
    # detail at the native resolution and JPEG quality (NaN: not measured);
    # the last two are None for staging older than them.
    area: np.ndarray | None = None
    sharp: np.ndarray | None = None
    detail: np.ndarray | None = None
    quality: np.ndarray | None = None

    def _load_keep_columns(self) -> None:
        table, n = self.staged.table, self.staged.num_rows
        self.area = to_numpy(table.column("original_width")).astype(np.int64) * to_numpy(table.column("original_height")).astype(np.int64)
        self.sharp = _column(table, "score_sharpness", n, 0.0)
        if "score_detail" in table.column_names or "score_jpeg_quality" in table.column_names:
            self.detail = _column(table, "score_detail", n, np.nan)
            # Not a JPEG (PNG, an array, ...): nothing known to be quantized away.
            self.quality = _column(table, "score_jpeg_quality", n, 100.0)

    def best(self, rows: list[int]) -> int:
        """The member a cluster keeps: the most native information (see
        ``native_areas``). Members whose native area is within
        ``SAME_RESOLUTION_AREA`` of the largest count as the same resolution;
        among them the least compressed (highest JPEG quality, lossless
        first) is kept, then the larger native area, then the sharpest, then
        the first by (source, key). Staging without the detail and quality
        scores keeps the largest original area, then the sharpest."""
        if self.area is None:
            self._load_keep_columns()
        area, sharp, sources = self.area, self.sharp, self.report.sources
        if self.quality is None or self.detail is None:
            return min(rows, key=lambda r: (-int(area[r]), -float(sharp[r]), int(sources[r]), self.report.key(r)))
        native = dict(zip(rows, native_areas(area[rows], self.detail[rows]).tolist()))
        top = max(native.values())
        same = [r for r in rows if native[r] * SAME_RESOLUTION_AREA >= top]
        quality = self.quality
        return min(same, key=lambda r: (-round(float(quality[r]), 1), -native[r], -float(sharp[r]), int(sources[r]),
                                        self.report.key(r)))


def native_areas(area: np.ndarray, detail: np.ndarray) -> np.ndarray:
    """The native pixel area of each member of one near-duplicate group:
    its original area, scaled down by its fine detail relative to the member
    with the most (``score_detail``, measured at full decode scale). An
    upscaled copy has more pixels but no detail above its source's
    resolution, and a heavily compressed one has lost it: neither counts as
    more native pixels than the original. A member whose detail was not
    measured (a JPEG decoded at reduced DCT scale, where that band is
    averaged away for every copy alike) keeps its original area."""
    native = np.asarray(area, np.float64).copy()
    detail = np.asarray(detail, np.float64)
    measured = np.isfinite(detail) & (detail > 0)
    if measured.any():
        native[measured] *= np.minimum(1.0, detail[measured] / detail[measured].max())
    return native


def apply_cleaning(
    staged: Any, keep: np.ndarray, rejections: list[Rejection], config: CleanConfig, size_px: int | None = None,
    keep_exact: bool = False, synthetic: np.ndarray | None = None, executor: Any = None,
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
    ``executor`` (anything with ``imap(fn, tasks)``) runs the near-duplicate
    search and confirmation as tasks; the outcome is the same.
    """
    n = staged.num_rows
    keep = keep.copy()
    if n == 0 or not config.enabled:
        return CleanOutcome(keep, list(rejections))
    codes, names = staged.label_codes()
    state = _Cleaning(staged, config, keep, _Labels(codes, names), staged.content_groups(), _Reporter(staged), synthetic,
                     executor)
    exact_i, exact_j, kept_rejections = _regroup_exact(state, rejections)
    _quality_checks(state)
    near_i, near_j = _near_duplicate_pairs(state, size_px)
    cluster = cluster_labels(n, np.concatenate([exact_i, near_i]), np.concatenate([exact_j, near_j]))
    in_group = np.zeros(n, bool)
    for edge in (exact_i, exact_j, near_i, near_j):
        in_group[edge] = True
    near_removed = _resolve_clusters(state, cluster, in_group, keep_exact)
    _guard_near(near_removed, state.labels, state.keep, config, synthetic)
    for check in state.flagged:  # report what the final dataset keeps
        state.flagged[check] = state.flagged[check] & state.keep
        state.summary[f"{check}_kept"] = int(state.flagged[check].sum())
    cluster_ids = np.where(in_group, cluster, -1).astype(np.int64)
    return CleanOutcome(state.keep, kept_rejections + state.out, state.flagged, state.summary, cluster_ids)


def _regroup_exact(state: _Cleaning, rejections: list[Rejection]) -> tuple[np.ndarray, np.ndarray, list[Rejection]]:
    """Exact-duplicate groups found by the plan's exact dedup are regrouped
    (with the near duplicates and label conflicts): their members are
    reinstated, checked, and the cluster's keeper is chosen by the rule.
    Returns the (holder, duplicate) edges and the rejections not regrouped."""
    staged, keep = state.staged, state.keep
    uri_index = {u: i for i, u in enumerate(staged.source_uris)}
    wanted = [k for k, rej in enumerate(rejections) if rej.reason == "duplicate" and rej.source in uri_index]
    # Only rows exact dedup removed can hold them: searching those, not every
    # key of the source, keeps this linear in the duplicates (10M keys in a
    # hash set took seconds).
    row_of = _rows_of(staged, state.report.sources, [(uri_index[rejections[k].source], rejections[k].key) for k in wanted], ~keep)
    # The holder of a content group: its first row still kept (n: none).
    n = len(keep)
    kept_rows = np.flatnonzero(keep)
    holder = min_per_group(state.groups[kept_rows], kept_rows, int(state.groups.max()) + 1 if n else 0, n)
    exact_i, exact_j, regrouped = [], [], set()
    for k, a in zip(wanted, row_of):
        b = int(holder[state.groups[a]]) if a >= 0 else n
        if b < n:
            exact_i.append(b)
            exact_j.append(a)
            regrouped.add(k)
    keep[exact_j] = True
    kept_rejections = [rej for k, rej in enumerate(rejections) if k not in regrouped]
    return np.asarray(exact_i, np.int64), np.asarray(exact_j, np.int64), kept_rejections


def _rows_of(staged: Any, sources: np.ndarray, wanted: list[tuple[int, str]], among: np.ndarray) -> list[int]:
    """The staged row of each (source index, key) among the rows ``among``
    (a mask), -1 when absent; the last row wins if a source repeats a key."""
    out = [-1] * len(wanted)
    for source in sorted({s for s, _ in wanted}):
        asks = [k for k, (s, _) in enumerate(wanted) if s == source]
        rows = np.flatnonzero((sources == source) & among)[::-1]  # reversed: index_in finds the last row
        found = pc.index_in(string_column([wanted[k][1] for k in asks]), value_set=staged.table.column("key").take(numpy_column(rows)))
        for k, hit in zip(asks, found.to_pylist()):
            if hit is not None:
                out[k] = int(rows[hit])
    return out


def _quality_checks(state: _Cleaning) -> None:
    """Quality checks, in order; each sees only the samples still kept."""
    config, keep = state.config, state.keep
    for check, (fails, score) in quality_flags(state.staged.table, config).items():
        column, direction, option, flag = _CHECKS[check]
        if check == "grayscale" and not config.drop_grayscale:
            state.flagged[check] = fails & keep
            state.summary["grayscale_kept"] = int(state.flagged[check].sum())
            continue
        _guard(check, fails, state.labels, keep, config, state.synthetic)
        limit = getattr(config, option)
        failing = np.flatnonzero(fails & keep)
        state.report.prefetch(failing)
        for i in failing.tolist():
            detail = f"{column.removeprefix('score_')} {score[i]:.4g} is {direction} {flag} {limit:g}"
            state.out.append(state.report.reject(i, check, detail, score[i]))
        keep &= ~fails


def _near_duplicate_pairs(state: _Cleaning, size_px: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Confirmed near-duplicate pairs among the kept rows: pHash candidates
    within the radius whose thumbnails correlate and whose mean colours
    match. Only the candidates' thumbnails are read, and pairs are
    confirmed in chunks, so memory follows the candidates, not the dataset.
    With an executor (``--executor ray``) the block searches and the
    confirmation run as tasks, each reading its thumbnails from staging."""
    staged, config, executor = state.staged, state.config, state.executor
    empty = np.zeros(0, np.int64)
    if not config.near_dups or "phash" not in staged.table.column_names:
        return empty, empty
    alive = np.flatnonzero(state.keep)
    ci, cj = candidate_pairs(staged.column("phash")[alive], config.near_dup_radius, executor=executor)
    if not len(ci):
        return empty, empty
    if size_px:
        # The thumbnail is luma only, so a pair must also match in mean colour.
        # That test comes first (three numbers per row, no thumbnail):
        # a pair must pass both tests, and most candidates of similar shapes
        # in other colours fail this one, so fewer thumbnails are read.
        means = staged.channel_sums("channel_sum") / (size_px * size_px)
        ok = np.zeros(len(ci), bool)
        for start in range(0, len(ci), _TASK_PAIRS):
            a, b = alive[ci[start : start + _TASK_PAIRS]], alive[cj[start : start + _TASK_PAIRS]]
            ok[start : start + _TASK_PAIRS] = np.abs(means[a] - means[b]).max(axis=1) <= NEAR_DUP_MAX_COLOR_SHIFT
        ci, cj = ci[ok], cj[ok]
        if not len(ci):
            return empty, empty
    parts, local = staged.column("part"), staged.column("row")
    step = len(ci) if executor is None else _TASK_PAIRS
    tasks = []
    for start in range(0, len(ci), step):
        a, b = alive[ci[start : start + step]], alive[cj[start : start + step]]
        rows = np.unique(np.concatenate([a, b]))
        tasks.append(ConfirmTask(
            part_dirs=tuple(staged.part_dirs), parts=parts[rows], rows=local[rows],
            thumbs_file=staged.thumbs_file, staged_rows=rows,
            pos_i=np.searchsorted(rows, a), pos_j=np.searchsorted(rows, b),
            similarity=config.near_dup_similarity,
        ))
    if executor is None:
        close = confirm_pairs(tasks[0])
    else:
        done = dict(executor.imap(confirm_pairs, tasks))
        close = np.concatenate([done[k] for k in range(len(tasks))])
    return alive[ci[close]], alive[cj[close]]


@dataclass
class ConfirmTask:
    """Candidate pairs to confirm: the staged (partition, row) of each
    thumbnail they use, and each pair as two positions into those."""

    part_dirs: tuple[str, ...]
    parts: np.ndarray
    rows: np.ndarray
    pos_i: np.ndarray
    pos_j: np.ndarray
    similarity: float
    # With a thumbnail file from load_staged: those rows are read from it.
    thumbs_file: str | None = None
    staged_rows: np.ndarray | None = None


def confirm_pairs(task: ConfirmTask) -> np.ndarray:
    """Which pairs of ``task`` have a thumbnail correlation of at least
    ``similarity`` (the luma test; the colour test is the caller's). Every figure is computed per row or per pair, so any split into tasks
    gives the same answer bit for bit."""
    if task.thumbs_file is not None and task.staged_rows is not None:
        thumbs = map_thumbnails(task.thumbs_file, task.staged_rows)
    else:
        thumbs = read_thumbnails(task.part_dirs, task.parts, task.rows)
    centre, scale = _row_moments(thumbs)
    close = np.zeros(len(task.pos_i), bool)
    for start in range(0, len(task.pos_i), _CONFIRM_CHUNK):
        a, b = task.pos_i[start : start + _CONFIRM_CHUNK], task.pos_j[start : start + _CONFIRM_CHUNK]
        za = (thumbs[a].astype(np.float32) - centre[a]) / scale[a]
        zb = (thumbs[b].astype(np.float32) - centre[b]) / scale[b]
        close[start : start + _CONFIRM_CHUNK] = np.einsum("ij,ij->i", za, zb) >= task.similarity
    return close


def _row_moments(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per thumbnail, its float32 mean and the norm (+1e-6) of the centred
    row, as [n, 1] columns: (t - mean) / norm is the unit row whose dot
    products are correlations. Computed once per row, in row batches (each
    row's figures do not depend on the batch), then reused for every pair."""
    centre = np.empty((len(thumbs), 1), np.float32)
    scale = np.empty((len(thumbs), 1), np.float32)
    for start in range(0, len(thumbs), _CONFIRM_CHUNK):
        z = thumbs[start : start + _CONFIRM_CHUNK].astype(np.float32)
        mean = z.mean(axis=1, keepdims=True)
        z -= mean
        centre[start : start + _CONFIRM_CHUNK] = mean
        scale[start : start + _CONFIRM_CHUNK] = np.linalg.norm(z, axis=1, keepdims=True) + 1e-6
    return centre, scale


def _resolve_clusters(state: _Cleaning, cluster: np.ndarray, in_group: np.ndarray, keep_exact: bool) -> np.ndarray:
    """Keep one member per cluster (the most native information:
    ``_Cleaning.best``), settle label conflicts, and reject the rest;
    returns the rows removed as near duplicates."""
    staged, keep, report = state.staged, state.keep, state.report
    members: dict[int, list[int]] = defaultdict(list)
    grouped = np.flatnonzero(in_group & keep)
    for i, c in zip(grouped.tolist(), cluster[grouped].tolist()):
        members[c].append(i)
    report.prefetch(grouped)
    near_removed = np.zeros(staged.num_rows, bool)
    for rows in members.values():
        generated: list[int] = []
        if state.synthetic is not None and not state.synthetic[rows].all():
            generated = [r for r in rows if state.synthetic[r]]
            rows = [r for r in rows if not state.synthetic[r]]
        rows, kept = _settle_labels(state, rows, members, cluster)
        for r in rows:
            if r == kept:
                continue
            keep[r] = False
            if state.groups[r] == state.groups[kept]:
                if keep_exact:  # --no-dedup: exact copies stay
                    keep[r] = True
                    continue
                state.out.append(report.reject(r, "duplicate", f"same pixels as {report.key(kept)}", kept=kept))
            else:
                near_removed[r] = True
                state.out.append(report.reject(r, "near_duplicate", f"near duplicate of {report.key(kept)}", kept=kept))
        for r in generated:  # a synthetic copy of real data adds nothing
            keep[r] = False
            near_removed[r] = True
            reason = "duplicate" if kept is not None and state.groups[r] == state.groups[kept] else "near_duplicate"
            state.out.append(report.reject(r, reason, f"synthetic {reason.replace('_', ' ')} of a real sample"
                                           + (f" ({report.key(kept)})" if kept is not None else ""), kept=kept))
    return near_removed


def _settle_labels(state: _Cleaning, rows: list[int], members: dict[int, list[int]],
                   cluster: np.ndarray) -> tuple[list[int], int | None]:
    """A cluster spanning several labels: drop it whole, or keep its strict
    majority label (``label_conflicts = "majority"``); reject the others.
    Returns the rows left and the cluster's keeper (None when none is left)."""
    labels, report = state.labels, state.report
    by_label: dict[Any, list[int]] = defaultdict(list)
    for r in rows:
        by_label[labels[r]].append(r)
    conflict: list[int] = []
    if len(by_label) > 1:
        counts = sorted((len(v) for v in by_label.values()), reverse=True)
        if state.config.label_conflicts == "majority" and counts[0] > counts[1]:
            major = max(by_label, key=lambda k: len(by_label[k]))
            conflict = [r for r in rows if labels[r] != major]
            rows = by_label[major]
        else:
            conflict, rows = rows, []
    kept = state.best(rows) if rows else None
    for r in conflict:
        others = sorted({str(labels[x]) for x in members[int(cluster[r])] if labels[x] != labels[r]})
        detail = f"duplicate of a sample labelled {', '.join(others)} (label {labels[r]})"
        if kept is not None:
            detail += f"; kept {report.key(kept)} (majority label {labels[kept]})"
        state.out.append(report.reject(r, "label_conflict", detail, kept=kept))
        state.keep[r] = False
    return rows, kept


def _guard_near(removed: np.ndarray, labels: _Labels, keep: np.ndarray, config: CleanConfig,
                synthetic: np.ndarray | None = None) -> None:
    _guard("near_duplicate", removed, labels, keep | removed, config, synthetic)
