"""Class-balance statistics of a dataset (``gandata stats``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

from gandata.manifest import read_manifest


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
        if not self.counts:
            return None
        lo, hi = min(self.counts.values()), max(self.counts.values())
        return math.inf if lo == 0 else hi / lo

    @property
    def normalized_entropy(self) -> float | None:
        """Shannon entropy of the class shares over ln K (1.0 = perfectly even)."""
        k = len(self.counts)
        total = self.num_samples
        if k == 0 or total == 0:
            return None
        if k == 1:
            return 1.0
        h = -sum((c / total) * math.log(c / total) for c in self.counts.values() if c > 0)
        return h / math.log(k)

    def to_json(self) -> dict[str, Any]:
        total = self.num_samples
        ratio = self.imbalance_ratio
        return {
            "num_samples": total,
            "classes": [
                {"name": name, "count": count, "share": (count / total) if total else 0.0}
                for name, count in self.counts.items()
            ],
            # JSON has no infinity: an empty class makes the ratio null.
            "imbalance_ratio": None if ratio is None or math.isinf(ratio) else ratio,
            "normalized_entropy": self.normalized_entropy,
        }


def balance_of(counts: Mapping[str, int]) -> ClassBalance:
    return ClassBalance(counts={str(k): int(v) for k, v in counts.items()})


def dataset_balance(root: str | os.PathLike[str]) -> tuple[ClassBalance, dict[str, Any]]:
    """The class balance of a built dataset, and its manifest."""
    manifest = read_manifest(root)
    return balance_of(manifest["class_counts"]), manifest


def provenance_tables(manifest: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of the per-source and per-licence tables of ``gandata stats``:
    ``{"source", "num_samples", "share", "num_rejected", "license"}`` and
    ``{"license", "num_samples", "share"}``, from the manifest's ``sources``
    and ``licenses``."""
    total = int(manifest.get("num_samples", 0)) or 0
    by_source = [
        {
            "source": str(s.get("uri", "")),
            "num_samples": int(s.get("num_samples", 0)),
            "share": int(s.get("num_samples", 0)) / total if total else 0.0,
            "num_rejected": int(s.get("num_rejected", 0)),
            "license": str(s.get("license", "unknown")),
        }
        for s in manifest.get("sources", [])
    ]
    by_license = [
        {"license": str(name), "num_samples": int(count), "share": int(count) / total if total else 0.0}
        for name, count in sorted((manifest.get("licenses") or {}).items(), key=lambda kv: (-int(kv[1]), kv[0]))
    ]
    return by_source, by_license
