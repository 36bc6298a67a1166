"""`gandata stats` (the audit) and `gandata preview`, through the CLI."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gandata.cli import main
from gandata.config import (
    BalanceConfig,
    BuildConfig,
    ImageConfig,
    OutputConfig,
    SourceSpec,
)
from gandata.pipeline import build
from gandata.stats.audit import thumbnail_diversity
from gandata.stats.preview import preview_samples
from tests.common.balance_helpers import folder_config, make_folder

# The example: imbalance ratio 400/16 = 25.
COUNTS = {"c0": 400, "c1": 280, "c2": 160, "c3": 80, "c4": 40, "c5": 16}


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # c2 gets 4 exact copies: 164 files, 160 after de-duplication,
    # duplicate share 8/164.
    return make_folder(tmp_path_factory.mktemp("stats") / "src", COUNTS, copies={"c2": 4}, seed=5)


def _hand_entropy(counts: list[int]) -> float:
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts) / math.log(len(counts))


def test_stats_json_on_a_built_dataset(raw_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(folder_config(raw_folder, out, dedup=False))
    result = CliRunner().invoke(main, ["stats", str(out), "--json", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = {**COUNTS, "c2": 164}
    assert {c["name"]: c["count"] for c in data["classes"]} == expected
    assert data["num_samples"] == sum(expected.values())
    assert data["imbalance_ratio"] == 25.0
    assert data["normalized_entropy"] == pytest.approx(_hand_entropy(list(expected.values())))
    assert data["min_count"] == 16 and data["max_count"] == 400 and data["median_count"] == 122.0
    assert data["below_floor"] == list(expected)  # all below the default 1,000
    assert data["counts_deduplicated"]["c2"] == 160
    shares = {c["name"]: c["duplicate_share"] for c in data["classes"]}
    assert shares["c2"] == pytest.approx(8 / 164) and shares["c0"] == 0.0
    assert all(c["diversity"] > 0.1 for c in data["classes"])  # random noise images differ a lot
    for key in ("effective_classes", "gini", "mean", "std", "rejections", "sources", "splits"):
        assert key in data
    with Image.open(tmp_path / "p.png") as img:
        assert img.format == "PNG" and img.width > 100


def test_stats_on_raw_sources_before_any_build(raw_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the temporary staging goes here
    (raw_folder / "c0" / "broken.png").write_bytes(b"not a png")
    try:
        result = CliRunner().invoke(main, ["stats", str(raw_folder), "--json", "--size", "16", "--workers", "1", "--floor", "100"])
    finally:
        (raw_folder / "c0" / "broken.png").unlink()
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kind"] == "source"
    assert {c["name"]: c["count"] for c in data["classes"]} == {**COUNTS, "c2": 164}
    assert data["counts_deduplicated"]["c2"] == 160
    assert data["imbalance_ratio"] == 25.0
    assert data["below_floor"] == ["c3", "c4", "c5"]
    assert data["rejections"] == {"corrupt": 1}
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_stats_text_report_flags_small_classes_and_shows_before_after(raw_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(folder_config(raw_folder, out, BalanceConfig(mode="oversample", augment=False)))
    result = CliRunner().invoke(main, ["stats", str(out), "--floor", "400"])
    assert result.exit_code == 0, result.output
    assert "imbalance ratio (max/min): 1.00" in result.output
    assert "before balancing: c0 400, c1 280, c2 160, c3 80, c4 40, c5 16" in result.output
    assert "effective classes exp(H): 6.00" in result.output
    assert "warning" not in result.output  # all classes at 400 after oversampling
    result = CliRunner().invoke(main, ["stats", str(out), "--floor", "401"])
    assert "warning: 6 class(es) below 401 images" in result.output and "oversample" in result.output


def test_a_class_of_copies_has_low_diversity() -> None:
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert thumbnail_diversity(np.stack([one] * 5)) == 0.0
    assert thumbnail_diversity(rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)) > 0.05
    assert thumbnail_diversity(one[None]) is None


def test_stats_errors_name_the_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["stats", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such folder" in result.output
    result = CliRunner().invoke(main, ["stats", str(tmp_path), "--split", "val"])
    assert result.exit_code == 2 and "--split" in result.output
    result = CliRunner().invoke(main, ["stats", str(tmp_path), "--beta", "1"])
    assert result.exit_code == 2 and "--beta: 1.0 must be in [0, 1)" in result.output


def test_preview_writes_one_row_per_class_and_denormalizes_floats(tmp_path: Path) -> None:
    images = {}
    for dtype in ("uint8", "float32"):
        out = tmp_path / dtype
        build(BuildConfig(sources=(SourceSpec("synth:shapes?count=40"),), output=str(out), image=ImageConfig(size_px=16),
                          out=OutputConfig(dtype=dtype, normalize="standardize"), workers=1, executor="serial"))
        images[dtype] = preview_samples(out, 3)
    assert list(images["uint8"]) == ["circle", "square", "triangle", "star", "cross"]
    for name in images["uint8"]:
        for a, b in zip(images["uint8"][name], images["float32"][name]):
            assert b.dtype == np.uint8 and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    png = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["preview", str(tmp_path / "uint8"), "-o", str(png), "--per-class", "3"])
    assert result.exit_code == 0, result.output
    assert "15 samples" in result.output
    with Image.open(png) as img:
        assert img.height >= 5 * 48
    result = CliRunner().invoke(main, ["preview", str(tmp_path / "uint8"), "-o", str(png), "--per-class", "0"])
    assert result.exit_code == 2 and "--per-class" in result.output


def test_provenance_shares_are_of_the_whole_dataset():
    from gandata.stats.balance import provenance_tables

    # What `stats --split train` passes: the split's size beside whole-dataset source counts.
    manifest = {
        "num_samples": 2700,
        "sources": [{"uri": "a", "num_samples": 3000}, {"uri": "b", "num_samples": 1000}],
        "licenses": {"CC0-1.0": 3000, "unknown": 1000},
    }
    by_source, by_license = provenance_tables(manifest)
    assert [r["share"] for r in by_source] == [0.75, 0.25]
    assert [(r["license"], r["share"]) for r in by_license] == [("CC0-1.0", 0.75), ("unknown", 0.25)]
    assert provenance_tables({"num_samples": 0, "sources": []}) == ([], [])
