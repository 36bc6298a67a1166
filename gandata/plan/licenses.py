"""The licence policy step: samples whose licence is outside the policy
(--license-allow, --license-deny, --require-license, or a source's own
license_allow / license_deny) are rejected with reason ``license``.

It runs right after exact deduplication and before caps and cleaning, so a
refused sample takes no cap slot; and when the sample deduplication kept is
refused, an allowed copy of the same pixels takes its place rather than the
image being lost.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gandata.config import BuildConfig, SourceSpec
from gandata.dataset.licenses import is_unknown, license_matches
from gandata.plan.table import StagedTable
from gandata.records import Rejection
from gandata.util.json_rows import parse_json_rows

# Rows whose provenance is parsed at a time.
_CHUNK_ROWS = 65_536


def license_refusal(name: str | None, allow: Sequence[str], deny: Sequence[str], require: bool) -> str | None:
    """Why a sample under licence ``name`` is refused, or None when it is kept."""
    shown = name or "unknown"
    denied = license_matches(name, deny)
    if denied is not None:
        return f"licence {shown!r} matches --license-deny {denied!r}"
    if allow and license_matches(name, allow) is None:
        return f"licence {shown!r} is not in --license-allow {', '.join(allow)}"
    if require and is_unknown(name):
        return f"licence {shown!r} is unknown (--require-license)"
    return None


def _policy_of(spec: SourceSpec, config: BuildConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    allow = spec.license_allow if spec.license_allow is not None else config.licenses.allow
    deny = spec.license_deny if spec.license_deny is not None else config.licenses.deny
    return tuple(allow), tuple(deny)


def _source_active(spec: SourceSpec, config: BuildConfig) -> bool:
    allow, deny = _policy_of(spec, config)
    return bool(allow or deny or config.licenses.require)


def apply_license_policy(staged: StagedTable, keep: np.ndarray, rejections: list[Rejection],
                         config: BuildConfig) -> tuple[np.ndarray, list[Rejection]]:
    """The kept mask and rejections after the licence policy of ``config``.

    ``keep`` and ``rejections`` are those of exact deduplication; neither is
    modified in place."""
    n = staged.num_rows
    if n == 0 or not any(_source_active(s, config) for s in config.sources):
        return keep, rejections
    keys = staged.keys()
    locators = staged.table.column("locator").to_pylist()
    sources = staged.column("source_index")
    licences = _licence_names(staged)
    policies = [_policy_of(s, config) for s in config.sources]
    refused = np.zeros(n, dtype=bool)
    out_rejections: list[Rejection] = []
    for i in range(n):
        src = int(sources[i])
        allow, deny = policies[src] if src < len(policies) else ((), ())
        why = license_refusal(licences[i], allow, deny, config.licenses.require)
        if why is not None:
            refused[i] = True
            # Only samples still in the dataset get a license rejection; a
            # duplicate already has its own.
            if keep[i]:
                out_rejections.append(Rejection(key=keys[i], locator=locators[i], reason="license",
                                                detail=f"{locators[i]}: {why}", source=staged.source_uris[src]))
    new_keep = keep & ~refused
    hashes = staged.table.column("content_hash").to_pylist()
    rescued = _rescue_duplicates(staged, keep, refused, hashes)
    if not rescued:
        return new_keep, out_rejections + rejections
    new_keep[list(rescued.values())] = True
    rescued_rows = set(rescued.values())
    row_of = {(staged.source_uris[int(s)], k): i for i, (k, s) in enumerate(zip(keys, sources))}
    for r in rejections:
        row = row_of.get((r.source, r.key)) if r.reason == "duplicate" else None
        if row is not None:
            if row in rescued_rows:
                continue  # now the kept copy of its group
            winner = rescued.get(hashes[row])
            if winner is not None:
                r = Rejection(key=r.key, locator=r.locator, reason=r.reason, detail=f"{r.key}: same pixels as {keys[winner]}",
                              source=r.source, score=r.score, kept_key=keys[winner])
        out_rejections.append(r)
    return new_keep, out_rejections


def _licence_names(staged: StagedTable) -> list[str | None]:
    """The ``license`` provenance field of every staged row (None: none
    given), parsed in chunks so the parsed provenance is never held whole."""
    if "provenance" not in staged.table.column_names:
        return [None] * staged.num_rows
    column = staged.table.column("provenance")
    names: list[str | None] = []
    for start in range(0, staged.num_rows, _CHUNK_ROWS):
        names.extend(p.get("license") if p else None for p in parse_json_rows(column.slice(start, _CHUNK_ROWS).to_pylist()))
    return names


def _rescue_duplicates(staged: StagedTable, keep: np.ndarray, refused: np.ndarray, hashes: list[bytes]) -> dict[bytes, int]:
    """For each duplicate group whose kept sample is refused: the first
    allowed member by (source, key), the order deduplication uses."""
    lost = {hashes[i] for i in np.flatnonzero(keep & refused).tolist()}
    if not lost:
        return {}
    keys = staged.keys()
    sources = staged.column("source_index")
    candidates = [i for i in range(staged.num_rows) if not keep[i] and not refused[i] and hashes[i] in lost]
    candidates.sort(key=lambda i: (int(sources[i]), keys[i]))
    rescued: dict[bytes, int] = {}
    for i in candidates:
        rescued.setdefault(hashes[i], i)
    return rescued
