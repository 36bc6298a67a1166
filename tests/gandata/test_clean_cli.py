"""`gandata clean --report`, the cleaning flags of `build`, and the
rejection table of `stats`, through click's CliRunner on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner
from PIL import Image

from gandata.cli import main
from tests.common.cleandata import digit, jpeg, near_copy, photo, png, write


def _folder(root: Path) -> None:
    rng = np.random.default_rng(7)
    for i in range(8):
        picture = photo(rng)
        write(root / f"sky/s{i}.jpg", jpeg(picture, 90))
        if i < 2:
            write(root / f"sky/near-s{i}.jpg", near_copy(picture, rng))
    for i in range(8):
        write(root / f"one/o{i}.png", png(digit(rng, 1)))
    write(root / "sky/blank.png", png(Image.new("RGB", (40, 40), (30, 90, 200))))
    write(root / "one/copy-o0.png", (root / "one/o0.png").read_bytes())


def test_clean_report_writes_counts_grids_and_issues(tmp_path: Path) -> None:
    _folder(tmp_path / "in")
    result = CliRunner().invoke(main, ["clean", str(tmp_path / "in"), "--report", str(tmp_path / "rep"), "--size", "32", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    rep = tmp_path / "rep"
    summary = json.loads((rep / "summary.json").read_text())
    assert summary["reasons"]["near_duplicate"] == 2
    assert summary["reasons"]["duplicate"] == 1 and summary["reasons"]["low_information"] == 1
    assert summary["reasons_per_class"]["low_information"] == {"sky": 1}
    assert {"grid-near_duplicate.png", "grid-duplicate.png", "grid-low_information.png"} <= set(summary["grids"])
    grid = Image.open(rep / "grid-near_duplicate.png")
    assert grid.width >= 2 * 64  # removed and kept side by side
    issues = pq.read_table(rep / "issues.parquet").to_pylist()
    assert len(issues) == 20
    by_key = {r["key"]: r for r in issues}
    assert by_key["sky/blank.png"]["status"] == "low_information" and by_key["sky/blank.png"]["std"] < 0.01
    # Same size and sharpness: the first key is kept.
    assert by_key["one/o0.png"]["kept_key"] == "one/copy-o0.png" and by_key["one/o0.png"]["status"] == "duplicate"
    assert all(r["phash"] and len(r["phash"]) == 16 for r in issues)
    # The keep rule's signals too: the quality of the JPEGs (saved at 90), none for PNGs; detail measured.
    staged = [r for r in issues if r["std"] is not None]
    assert all(abs(r["jpeg_quality"] - 90) <= 1 for r in staged if r["key"].startswith("sky/s"))
    assert all(r["jpeg_quality"] is None for r in staged if r["key"].endswith(".png"))
    assert any(r["native_detail"] is not None for r in staged) and isinstance(by_key["one/o0.png"]["detail"], str)
    assert {"native_detail", "jpeg_quality"} <= set(summary["score_percentiles"])
    assert "| `near_duplicate` | 2 |" in (rep / "report.md").read_text()
    assert not (rep / ".staging").exists()


def test_build_flags_tune_cleaning_and_stats_shows_rejections(tmp_path: Path) -> None:
    _folder(tmp_path / "in")
    runner = CliRunner()
    out = tmp_path / "ds"
    result = runner.invoke(main, ["build", str(tmp_path / "in"), "-o", str(out), "--size", "32", "--workers", "1", "--no-near-dups", "--skip-check", "low_information"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rejections"] == {"duplicate": 1}
    assert manifest["config"]["clean"]["skip"] == ["low_information"]
    stats = runner.invoke(main, ["stats", str(out)])
    assert stats.exit_code == 0 and "rejected: 1" in stats.output and "duplicate" in stats.output
    result = runner.invoke(main, ["build", str(tmp_path / "in"), "-o", str(out), "--size", "32", "--workers", "1", "--overwrite", "--no-dedup"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["rejections"] == {"low_information": 1, "near_duplicate": 2}
    result = runner.invoke(main, ["build", str(tmp_path / "in"), "-o", str(out), "--size", "32", "--workers", "1", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["rejections"] == {"duplicate": 1, "low_information": 1, "near_duplicate": 2}
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    near = [r for r in rejected if r["reason"] == "near_duplicate"]
    assert all(r["kept_key"] and r["kept_key"] in r["detail"] for r in near)
    low = next(r for r in rejected if r["reason"] == "low_information")
    assert low["score"] < 0.01


def test_a_miscalibrated_threshold_is_a_clear_cli_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for i in range(12):
        write(tmp_path / "in" / f"sky/s{i}.jpg", jpeg(photo(rng), 90))
    result = CliRunner().invoke(main, ["build", str(tmp_path / "in"), "-o", str(tmp_path / "ds"), "--size", "32", "--workers", "1", "--dark-p99", "250"])
    assert result.exit_code == 2
    assert "--dark-p99: the too_dark check would remove 12 of 12 samples of class 'sky'" in result.output
    result = CliRunner().invoke(main, ["build", str(tmp_path / "in"), "-o", str(tmp_path / "ds"), "--label-conflicts", "vote"])
    assert result.exit_code == 2 and "--label-conflicts" in result.output
