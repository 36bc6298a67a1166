"""Several sources in one build: per-source labels, caps and weights, and
class names unified across sources.

Runs inside the plan step (``gandata.plan.make_plan``) on staged metadata
only, so changing a label map or a cap re-plans without re-ingesting:

- ``relabel``: a source's ``label`` gives every one of its samples that
  class; otherwise its ``label_map`` renames (or, mapping several names to
  one, merges) its classes. A label_map key the source does not have is an
  error (a typo would otherwise silently do nothing).
- ``check_conflicts``: class names that differ only in case, spaces or
  punctuation (``Car``/``car``, ``sea_lion``/``sea lion``) are reported as
  a ConfigError naming the sources, never merged silently.
- ``apply_caps``: a source's ``max_samples`` keeps a seeded random subset of
  its samples; the rest are rejected as ``capped``.
- ``source_weights``: a source's sampling ``weight`` becomes the per-sample
  weight written to the shards (``weights`` tensor) when any source sets one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Sequence

import numpy as np

from gandata.config import SourceSpec
from gandata.errors import ConfigError
from gandata.plan.table import StagedTable
from gandata.records import Rejection
from gandata.util.arrow import numpy_column, string_column

# Options that only the plan step reads: changing them never re-ingests.
PLAN_ONLY_OPTIONS = ("label_map", "label", "max_samples", "weight")


def _where(index: int, spec: SourceSpec) -> str:
    return f"sources[{index}] ({spec.uri})"


def map_name(spec: SourceSpec, name: str | None) -> str | None:
    """A source's class name after its ``label`` / ``label_map``."""
    if spec.label is not None:
        return spec.label
    if name is None:
        return None
    return spec.label_map.get(name, name)


def relabel(
    labels: list[str | None], source_index: np.ndarray, specs: Sequence[SourceSpec],
    declared: Sequence[Sequence[str] | None],
) -> tuple[list[str | None], list[list[str] | None]]:
    """Apply every source's label options to the staged labels and to the
    class names it declares; ConfigError for a label_map key the source lacks."""
    for i, spec in enumerate(specs):
        if not spec.label_map or spec.label is not None:
            continue
        present = {lab for lab, s in zip(labels, source_index) if s == i and lab is not None}
        present.update(declared[i] or ())
        missing = sorted(set(spec.label_map) - present)
        if missing:
            known = ", ".join(sorted(present)[:20]) or "none (the source is unlabeled; use 'label')"
            raise ConfigError(f"{_where(i, spec)}.label_map: {', '.join(map(repr, missing))} is not a class of this source (classes: {known})")
    out = [map_name(specs[int(s)], lab) for lab, s in zip(labels, source_index)]
    mapped_declared: list[list[str] | None] = []
    for spec, names in zip(specs, declared):
        if names is None or spec.label is not None:
            mapped_declared.append([spec.label] if spec.label is not None else None)
        else:
            mapped_declared.append(list(dict.fromkeys(map_name(spec, n) for n in names)))  # type: ignore[arg-type]
    return out, mapped_declared


def _fold(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.casefold())


def check_conflicts(
    labels: Sequence[str | None], source_index: np.ndarray, specs: Sequence[SourceSpec],
    declared: Sequence[Sequence[str] | None],
) -> None:
    """ConfigError when two class names would be the same class but for case,
    spaces or punctuation."""
    seen: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for lab, s in zip(labels, source_index):
        if lab is not None:
            seen[_fold(lab)][lab].add(int(s))
    for i, names in enumerate(declared):
        for name in names or ():
            seen[_fold(name)][name].add(i)
    for spellings in seen.values():
        if len(spellings) > 1:
            parts = [f"{name!r} in {', '.join(specs[s].uri for s in sorted(srcs))}" for name, srcs in sorted(spellings.items())]
            raise ConfigError(
                f"sources: class name conflict: {'; '.join(parts)} differ only in case or punctuation; "
                "map them to one name with a source's label_map (or keep them apart by renaming one)"
            )


def apply_caps(
    keep: np.ndarray, source_index: np.ndarray, staged: "StagedTable", specs: Sequence[SourceSpec], seed: int,
) -> list[Rejection]:
    """Drop (in place, from ``keep``) all but a seeded random ``max_samples``
    of each capped source; one ``capped`` rejection per dropped sample."""
    rejections: list[Rejection] = []
    for i, spec in enumerate(specs):
        if spec.max_samples is None:
            continue
        rows = np.flatnonzero(keep & (source_index == i))
        if len(rows) <= spec.max_samples:
            continue
        rng = np.random.default_rng([seed, i])
        chosen = np.zeros(len(rows), dtype=bool)
        chosen[rng.choice(len(rows), size=spec.max_samples, replace=False)] = True
        dropped = rows[~chosen]
        keep[dropped] = False
        for key, locator in zip(staged.strings("key", dropped), staged.strings("locator", dropped)):
            rejections.append(Rejection(
                key=key, locator=locator, reason="capped",
                detail=f"{key}: over the max_samples cap of {spec.max_samples} for this source", source=spec.uri,
            ))
    return rejections


def source_weights(source_index: np.ndarray, specs: Sequence[SourceSpec]) -> np.ndarray | None:
    """Per-sample weights from the sources' ``weight``; None when all are 1."""
    if all(spec.weight == 1.0 for spec in specs):
        return None
    per_source = np.array([spec.weight for spec in specs], dtype=np.float32)
    return per_source[source_index.astype(np.int64)]


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` of non-negative integers.
    A few distinct small values (source x label pairs) are found in one
    linear pass: sorting 10M of them took seconds, mostly cache misses."""
    top = int(values.max()) + 1 if len(values) else 0
    if top > len(values) + 1024:
        return np.unique(values, return_inverse=True)
    present = np.zeros(top, dtype=bool)
    present[values] = True
    index = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present), index[values]


def merge_sources(
    staged: "StagedTable", specs: Sequence[SourceSpec], keep: np.ndarray,
    declared: Sequence[Sequence[str] | None], seed: int,
) -> tuple[list[list[str] | None], list[Rejection]]:
    """Relabel ``staged`` in place, check class conflicts and apply caps (to
    ``keep``, in place); returns the mapped declared class names and the
    ``capped`` rejections."""
    if len(specs) != len(declared):  # a plan made without the build's specs
        return list(declared), []  # type: ignore[arg-type]
    source_index = staged.column("source_index").astype(np.int64) if staged.num_rows else np.zeros(0, np.int64)
    # Label options act on (source, label) pairs, so they run once per
    # distinct pair rather than once per sample.
    codes, names = staged.label_codes()
    pair = source_index * (len(names) + 1) + codes
    unique_pairs, inverse = _distinct(pair)
    pair_sources = unique_pairs // (len(names) + 1)
    labels = [names[c] for c in (unique_pairs % (len(names) + 1)).tolist()]
    mapped, mapped_declared = relabel(labels, pair_sources, specs, declared)
    check_conflicts(mapped, pair_sources, specs, mapped_declared)
    if not staged.num_rows:
        return mapped_declared, []
    if mapped != labels:
        column = string_column(mapped).take(numpy_column(inverse.astype(np.int64)))
        staged.table = staged.table.set_column(staged.table.schema.get_field_index("label"), "label", column)
    rejections = apply_caps(keep, source_index, staged, specs, seed)
    return mapped_declared, rejections
