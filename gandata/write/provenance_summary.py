"""Provenance summaries for the manifest: samples per licence, overall and
per source, read from the ``license`` provenance field every sample carries
(``gandata.sources.provenance``)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Sequence

import numpy as np

from gandata.sources.provenance import UNKNOWN_LICENSE
from gandata.util.arrow import numpy_column


def license_counts(provenance_json: Sequence[str], source_index: np.ndarray, num_sources: int) -> tuple[dict[str, int], list[dict[str, int]]]:
    """(samples per licence, samples per licence of each source) of the
    output samples, given their staged provenance JSON and source index."""
    overall: Counter[str] = Counter()
    per_source: list[Counter[str]] = [Counter() for _ in range(num_sources)]
    for prov, src in zip(provenance_json, source_index):
        name = str(json.loads(prov).get("license") or UNKNOWN_LICENSE)
        overall[name] += 1
        per_source[int(src)][name] += 1
    return dict(sorted(overall.items())), [dict(sorted(c.items())) for c in per_source]


def manifest_provenance(staged: Any, rows: np.ndarray, sources: Sequence[Any]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The manifest's ``licenses`` and the per-source extras (``license``,
    ``licenses``) merged into its ``sources`` entries."""
    if len(rows) and "provenance" in staged.table.column_names:
        prov = staged.table.column("provenance").take(numpy_column(rows)).to_pylist()
        src = staged.column("source_index")[rows]
    else:
        prov, src = [], np.zeros(0, np.int32)
    overall, per_source = license_counts(prov, src, len(sources))
    extras = []
    for source, counts in zip(sources, per_source):
        own = getattr(source, "license", None)
        extras.append({"license": (own() if callable(own) else own) or UNKNOWN_LICENSE, "licenses": counts})
    return overall, extras
