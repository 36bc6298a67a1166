"""Provenance summaries for the manifest: samples per licence, overall and
per source, read from the ``license`` provenance field every sample carries
(``gandata.sources.provenance``)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from gandata.sources.provenance import UNKNOWN_LICENSE
from gandata.util.arrow import numpy_column
from gandata.util.json_rows import parse_json_rows

# Samples whose provenance is read at a time.
_CHUNK_ROWS = 65_536


def license_counts(provenance_json: Sequence[str], source_index: np.ndarray, num_sources: int) -> tuple[dict[str, int], list[dict[str, int]]]:
    """(samples per licence, samples per licence of each source) of the
    output samples, given their staged provenance JSON and source index."""
    overall: Counter[str] = Counter()
    per_source: list[Counter[str]] = [Counter() for _ in range(num_sources)]
    for prov, src in zip(parse_json_rows(provenance_json), source_index):
        name = str(prov.get("license") or UNKNOWN_LICENSE)
        overall[name] += 1
        per_source[int(src)][name] += 1
    return dict(sorted(overall.items())), [dict(sorted(c.items())) for c in per_source]


def manifest_provenance(staged: Any, rows: np.ndarray, sources: Sequence[Any]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The manifest's ``licenses`` and the per-source extras (``license``,
    ``licenses``) merged into its ``sources`` entries."""
    overall: Counter[str] = Counter()
    per_source: list[Counter[str]] = [Counter() for _ in sources]
    if "provenance" in staged.table.column_names:
        column, source_index = staged.table.column("provenance"), staged.column("source_index")
        # In chunks: the provenance text of every sample of a large build,
        # as Python strings, would take gigabytes.
        for start in range(0, len(rows), _CHUNK_ROWS):
            chunk = rows[start : start + _CHUNK_ROWS]
            counts, by_source = license_counts(column.take(numpy_column(chunk)).to_pylist(), source_index[chunk], len(sources))
            overall.update(counts)
            for total, part in zip(per_source, by_source):
                total.update(part)
    extras = []
    for source, counts in zip(sources, per_source):
        own = getattr(source, "license", None)
        extras.append({"license": (own() if callable(own) else own) or UNKNOWN_LICENSE, "licenses": dict(sorted(counts.items()))})
    return dict(sorted(overall.items())), extras
