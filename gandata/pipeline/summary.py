"""What a build did, for the CLI to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BuildSummary:
    """What a build did, for the CLI to report."""

    output: str
    num_samples: int
    classes: list[str]
    class_counts: dict[str, int]
    rejections: dict[str, int]
    up_to_date: bool = False
    reused_partitions: int = 0
    reused_shards: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # --balance synthesize: the manifest's ``synthetic`` record.
    synthetic: dict[str, Any] | None = None
    # Web sources: one line per host fetched from (requests, retries, final
    # concurrency, median latency; ``HostFigures.describe()``), summed over
    # every worker process.
    web_hosts: list[str] = field(default_factory=list)
    # Samples per split, and how many of them a source assigned (the folder
    # split layout); the manifest's ``splits`` and ``preassigned_splits``.
    splits: dict[str, int] = field(default_factory=dict)
    preassigned_splits: dict[str, int] = field(default_factory=dict)
