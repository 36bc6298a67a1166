"""Class-balance statistics of a dataset (``gandata stats``)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Mapping

from gandata.stats.figures import (
    DEFAULT_BETA,
    DEFAULT_FLOOR,
    effective_classes,
    effective_samples,
    gini,
    imbalance_ratio,
    normalized_entropy,
)


@dataclass
class ClassBalance:
    """Counts per class and the balance figures derived from them."""

    counts: dict[str, int]

    @property
    def num_samples(self) -> int:
        return sum(self.counts.values())

    @property
    def imbalance_ratio(self) -> float | None:
        """max/min class count; inf when a class is empty, None without classes."""
        return imbalance_ratio(list(self.counts.values()))

    @property
    def normalized_entropy(self) -> float | None:
        """Shannon entropy of the class shares over ln K (1.0 = perfectly even)."""
        return normalized_entropy(list(self.counts.values()))

    @property
    def effective_classes(self) -> float | None:
        """exp(H): the number of equally large classes with the same entropy."""
        return effective_classes(list(self.counts.values()))

    @property
    def gini(self) -> float | None:
        """Gini coefficient of the class counts (0 = even)."""
        return gini(list(self.counts.values()))

    def below_floor(self, floor: int) -> list[str]:
        """Classes with fewer samples than ``floor``."""
        return [name for name, c in self.counts.items() if c < floor]

    def to_json(self, beta: float = DEFAULT_BETA, floor: int = DEFAULT_FLOOR) -> dict[str, Any]:
        """The audit figures under stable keys (documented in docs/BALANCE.md)."""
        total = self.num_samples
        ratio = self.imbalance_ratio
        values = sorted(self.counts.values())
        return {
            "num_samples": total,
            "classes": [
                {
                    "name": name, "count": count, "share": (count / total) if total else 0.0,
                    "effective_samples": effective_samples(count, beta), "below_floor": count < floor,
                }
                for name, count in self.counts.items()
            ],
            # JSON has no infinity: an empty class makes the ratio null.
            "imbalance_ratio": None if ratio is None or math.isinf(ratio) else ratio,
            "normalized_entropy": self.normalized_entropy,
            "effective_classes": self.effective_classes,
            "gini": self.gini,
            "min_count": values[0] if values else None,
            "median_count": float(statistics.median(values)) if values else None,
            "max_count": values[-1] if values else None,
            "beta": beta,
            "floor": floor,
            "below_floor": self.below_floor(floor),
        }


def balance_of(counts: Mapping[str, int]) -> ClassBalance:
    return ClassBalance(counts={str(k): int(v) for k, v in counts.items()})


def provenance_tables(manifest: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of the per-source and per-licence tables of ``gandata stats``:
    ``{"source", "num_samples", "share", "num_rejected", "license"}`` and
    ``{"license", "num_samples", "share"}``, from the manifest's ``sources``
    and ``licenses``. Shares are of the table's own total: the manifest's
    source and licence counts cover every split, so dividing them by one
    split's size (``stats --split train``) would exceed 100%."""
    sources = list(manifest.get("sources", []))
    total = sum(int(s.get("num_samples", 0)) for s in sources)
    by_source = [
        {
            "source": str(s.get("uri", "")),
            "num_samples": int(s.get("num_samples", 0)),
            "share": int(s.get("num_samples", 0)) / total if total else 0.0,
            "num_rejected": int(s.get("num_rejected", 0)),
            "license": str(s.get("license", "unknown")),
        }
        for s in sources
    ]
    licenses = manifest.get("licenses") or {}
    license_total = sum(int(c) for c in licenses.values())
    by_license = [
        {"license": str(name), "num_samples": int(count), "share": int(count) / license_total if license_total else 0.0}
        for name, count in sorted(licenses.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    ]
    return by_source, by_license
