"""rejected.jsonl: every input left out, from ingest (per partition) and from the plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from gandata.ingest.staging import read_rejections
from gandata.plan.table import Plan


def collect_rejections(part_dirs: Sequence[str], plan: Plan) -> list[dict[str, Any]]:
    rejections: list[dict[str, Any]] = []
    for part_dir in part_dirs:
        rejections.extend(read_rejections(Path(part_dir)))
    rejections.extend(r.to_json() for r in plan.rejections)
    return rejections


def write_rejections(path: Path, rejections: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for rec in rejections:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
