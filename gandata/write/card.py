"""Writing the dataset card (README.md) of a build: the two figures only the
build knows (class counts before balancing, synthetic samples), then the card
rendered from the manifest (gandata.dataset.card)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gandata.dataset.card import render_card
from gandata.plan.table import Plan, StagedTable, synthetic_mask


def counts_before_balancing(staged: StagedTable, plan: Plan, balance_mode: str) -> dict[str, int] | None:
    """Samples per class once cleaned, before class balancing changed them:
    the real originals in the output plus those undersampling dropped. None
    when the build did not balance."""
    if balance_mode == "none" or not plan.classes:
        return None
    synthetic = synthetic_mask(staged)
    original = np.ones(len(plan.rows), dtype=bool)
    if plan.derived_from is not None:
        original &= plan.derived_from < 0
    if len(plan.rows):
        original &= ~synthetic[plan.rows]
    labels = plan.labels[original]
    before: Counter[str] = Counter({name: int((labels == i).sum()) for i, name in enumerate(plan.classes)})
    dropped = [r for r in plan.rejections if r.reason == "undersampled"]
    if dropped:
        names = staged.table.column("label").to_pylist()
        keys = staged.keys()
        sources = staged.column("source_index")
        row_of = {(staged.source_uris[int(s)], k): i for i, (k, s) in enumerate(zip(keys, sources))}
        for r in dropped:
            row = row_of.get((r.source, r.key))
            if row is not None and names[row] in before:
                before[names[row]] += 1
    return {name: int(before[name]) for name in plan.classes}


def write_card(path: Path, manifest: Mapping[str, Any], staged: StagedTable, plan: Plan, balance_mode: str) -> None:
    """Write the card of a finished build to ``path``."""
    num_synthetic = int(synthetic_mask(staged)[plan.rows].sum()) if len(plan.rows) else 0
    text = render_card(manifest, counts_before=counts_before_balancing(staged, plan, balance_mode), num_synthetic=num_synthetic)
    path.write_text(text, encoding="utf-8")
