"""Digests of built datasets that do not depend on library versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq


def samples_digest(out: Path) -> str:
    """The hash of samples.parquet's rows (not its bytes, which also record the
    pyarrow version that wrote them)."""
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
