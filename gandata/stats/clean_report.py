"""The cleaning audit (``gandata clean SOURCE... --report DIR``).

Runs ingest and the cleaning checks only (no shards) and writes into DIR:

- ``summary.json``: counts per reason and per class, score percentiles,
  and the checks that would stop a build (``max_removed_share``);
- ``report.md``: the same as tables a person reads;
- ``issues.parquet``: one row per input with every score, its status
  (``kept`` or a reason code), the kept key for duplicates and the detail;
- ``grid-<reason>.png``: examples of each reason; for duplicates and label
  conflicts each removed image is shown beside the one kept.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from gandata.config import BuildConfig
from gandata.ingest.staging import open_images, read_rejections
from gandata.plan.cleaning import apply_cleaning
from gandata.plan.dedup import find_exact_duplicates
from gandata.plan.table import StagedTable
from gandata.util.arrow import numeric_column, string_column

__all__ = ["AuditSummary", "write_report"]

# issues.parquet column -> staged score: every score gandata computes at ingest
# (gandata/clean/scores.py). ``detail`` is the rejection's text there, so the
# fine-detail score is ``native_detail``.
SCORE_COLUMNS = {
    "std": "score_std", "entropy": "score_entropy", "p01": "score_p01", "p99": "score_p99",
    "sharpness": "score_sharpness", "blur": "score_blur", "color": "score_color",
    "native_detail": "score_detail", "jpeg_quality": "score_jpeg_quality",
}
GRID_EXAMPLES = 24
_PAIRED = ("duplicate", "near_duplicate", "label_conflict")
_TILE = 64


@dataclass
class AuditSummary:
    """What the audit found, for the CLI to print."""

    report_dir: str
    num_inputs: int
    num_kept: int
    reasons: dict[str, int]
    would_stop: list[str]
    grids: list[str]



# Unlabeled samples, and inputs rejected before their class was read, are
# counted under this name (not as a class called "None").
NO_CLASS = "(no class)"


def _class_name(label: Any) -> str:
    return NO_CLASS if label is None else str(label)

def write_report(config: BuildConfig, staged: StagedTable, part_dirs: Sequence[str], report_dir: str | Path) -> AuditSummary:
    """Apply the cleaning checks to the staged sources of ``config`` and write
    the audit report into ``report_dir`` (see the module docstring)."""
    out = Path(report_dir)
    n = staged.num_rows
    keep = np.ones(n, bool)
    rejections = []
    if config.dedup and n:
        keep, rejections = find_exact_duplicates(staged)
    # The audit shows everything a build would remove, even past the guard.
    relaxed = dataclasses.replace(config.clean, max_removed_share=1.0)
    outcome = apply_cleaning(staged, keep, rejections, relaxed, config.image.size_px, keep_exact=not config.dedup)
    keys = staged.keys() if n else []
    labels = staged.table.column("label").to_pylist() if n else []
    sources = staged.column("source_index").astype(np.int64) if n else np.zeros(0, np.int64)
    row_of = {(staged.source_uris[int(s)], k): i for i, (s, k) in enumerate(zip(sources.tolist(), keys))}
    status = ["kept"] * n
    kept_key: list[str | None] = [None] * n
    detail: list[str | None] = [None] * n
    for rej in outcome.rejections:
        i = row_of.get((rej.source, rej.key))
        if i is not None:
            status[i], kept_key[i], detail[i] = rej.reason, rej.kept_key, rej.detail
    for check, mask in outcome.flagged.items():
        for i in np.flatnonzero(mask):
            if status[i] == "kept":
                status[i], detail[i] = f"kept_{check}", f"{keys[i]}: flagged {check} (kept; --drop-grayscale drops it)"
    early = [r for d in part_dirs for r in read_rejections(Path(d))]

    out.mkdir(parents=True, exist_ok=True)
    columns: dict[str, Any] = {
        "key": string_column(keys + [r.get("key") for r in early]),
        "source": string_column([staged.source_uris[int(s)] for s in sources] + [r.get("uri") for r in early]),
        "locator": string_column((staged.table.column("locator").to_pylist() if n else []) + [r.get("source") for r in early]),
        "label": string_column(labels + [None] * len(early)),
        "status": string_column(status + [r["reason"] for r in early]),
        "kept_key": string_column(kept_key + [None] * len(early)),
        "detail": string_column(detail + [r.get("detail") for r in early]),
    }
    for name in ("original_width", "original_height"):
        columns[name] = numeric_column((staged.column(name).tolist() if n else []) + [None] * len(early), "int32")
    for name, col in SCORE_COLUMNS.items():
        values = staged.column(col).astype(np.float64).tolist() if n and col in staged.table.column_names else [None] * n
        values = [None if v is not None and v != v else v for v in values]  # NaN: not measured, an empty cell
        columns[name] = numeric_column(values + [None] * len(early), "float64")
    if n and "phash" in staged.table.column_names:
        hashes = staged.column("phash").astype(np.int64).view(np.uint64)
        columns["phash"] = string_column([f"{h:016x}" for h in hashes.tolist()] + [None] * len(early))
    pq.write_table(pa.table(columns), out / "issues.parquet")

    all_status = columns["status"].to_pylist()
    all_labels = columns["label"].to_pylist()
    reasons = dict(sorted(Counter(s for s in all_status if s != "kept").items()))
    per_class: dict[str, dict[str, int]] = defaultdict(dict)
    totals = Counter(_class_name(lb) for lb in labels)
    for s, lb in zip(all_status, all_labels):
        if s != "kept":
            per_class[s][_class_name(lb)] = per_class[s].get(_class_name(lb), 0) + 1
    would_stop = [
        f"{reason}: would remove {count} of {totals[label]} samples of class {label}"
        for reason, counts in per_class.items() if not reason.startswith("kept_")
        for label, count in counts.items()
        if totals[label] >= 10 and count > config.clean.max_removed_share * totals[label]
    ]
    distributions = {}
    for name in SCORE_COLUMNS:
        values = np.array([v for v in columns[name].to_pylist() if v is not None and np.isfinite(v)], np.float64)
        if len(values):
            q = np.percentile(values, [0, 1, 5, 25, 50, 75, 95, 99, 100])
            distributions[name] = {f"p{p}": round(float(v), 4) for p, v in zip((0, 1, 5, 25, 50, 75, 95, 99, 100), q)}
    grids = _write_grids(out, staged, outcome.rejections, outcome.flagged, row_of)
    summary = {
        "num_inputs": len(all_status),
        "num_staged": n,
        "num_kept": int(outcome.keep.sum()),
        "reasons": reasons,
        "reasons_per_class": {k: dict(sorted(v.items())) for k, v in sorted(per_class.items())},
        "class_totals": dict(sorted(totals.items())),
        "score_percentiles": distributions,
        "would_stop_build": would_stop,
        "clean_config": dataclasses.asdict(config.clean),
        "grids": grids,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=list) + "\n", encoding="utf-8")
    (out / "report.md").write_text(_markdown(summary), encoding="utf-8")
    return AuditSummary(str(out), len(all_status), summary["num_kept"], reasons, would_stop, grids)


def _tile(staged: Any, row: int) -> Image.Image:
    part = int(staged.column("part")[row])
    index = int(staged.column("row")[row])
    pixels = np.asarray(open_images(Path(staged.part_dirs[part]))[index])
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    return image.convert("RGB").resize((_TILE, _TILE), Image.Resampling.NEAREST)


def _write_grids(out: Path, staged: Any, rejections: list[Any], flagged: dict[str, np.ndarray], row_of: dict) -> list[str]:
    examples: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    keys = staged.keys() if staged.num_rows else []
    for rej in rejections:
        i = row_of.get((rej.source, rej.key))
        if i is None or len(examples[rej.reason]) >= GRID_EXAMPLES:
            continue
        kept = row_of.get((rej.source, rej.kept_key)) if rej.kept_key else None
        if kept is None and rej.kept_key:  # kept copy from another source
            kept = next((r for (u, k), r in row_of.items() if k == rej.kept_key), None)
        examples[rej.reason].append((i, kept))
    for check, mask in flagged.items():
        examples[f"kept_{check}"] = [(int(i), None) for i in np.flatnonzero(mask)[:GRID_EXAMPLES]]
    written = []
    for reason, items in sorted(examples.items()):
        if not items:
            continue
        paired = reason in _PAIRED
        per_row = 4 if paired else 8
        cell_w = (2 * _TILE + 4) if paired else _TILE
        rows = -(-len(items) // per_row)
        label_h = 12
        grid = Image.new("RGB", (per_row * (cell_w + 6), rows * (_TILE + label_h + 6)), (255, 255, 255))
        draw = ImageDraw.Draw(grid)
        for k, (i, kept) in enumerate(items):
            x, y = (k % per_row) * (cell_w + 6), (k // per_row) * (_TILE + label_h + 6)
            grid.paste(_tile(staged, i), (x, y + label_h))
            if paired and kept is not None:
                grid.paste(_tile(staged, kept), (x + _TILE + 4, y + label_h))
            caption = keys[i].rsplit("/", 1)[-1][: (cell_w // 6)]
            draw.text((x, y), caption, fill=(0, 0, 0))
        name = f"grid-{reason}.png"
        grid.save(out / name)
        written.append(name)
    return written


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# gandata cleaning report", "",
        f"{summary['num_inputs']} inputs, {summary['num_staged']} decoded, {summary['num_kept']} would be kept.", "",
        "| reason | count | per class |", "|---|---:|---|",
    ]
    for reason, count in summary["reasons"].items():
        per = ", ".join(f"{k}: {v}" for k, v in summary["reasons_per_class"].get(reason, {}).items())
        lines.append(f"| `{reason}` | {count} | {per} |")
    lines += ["", "Duplicate grids show each removed image (left) beside the one kept (right).", ""]
    if summary["would_stop_build"]:
        lines += ["## Checks that would stop a build (more than max_removed_share of a class)", ""]
        lines += [f"- {w}" for w in summary["would_stop_build"]] + [""]
    lines += ["## Score percentiles", "", "| score | p0 | p1 | p5 | p25 | p50 | p75 | p95 | p99 | p100 |", "|---|" + "---:|" * 9]
    for name, q in summary["score_percentiles"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4g}" for v in q.values()) + " |")
    lines += ["", "## Grids", ""] + [f"- [{g}]({g})" for g in summary["grids"]] + [""]
    return "\n".join(lines)
