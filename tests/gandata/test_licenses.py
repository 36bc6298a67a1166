"""The licence policy: --license-allow, --license-deny, --require-license, per
source and global, with reason ``license`` in rejected.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from gandata.cli import main
from gandata.config import (
    BuildConfig,
    ImageConfig,
    LicenseConfig,
    SourceSpec,
    build_config_from_mapping,
)
from gandata.dataset.licenses import normalize_license, restrictions
from gandata.pipeline import build
from gandata.plan.licenses import license_refusal


def _folder(root: Path, name: str, seeds: list[int]) -> Path:
    folder = root / name / "cls"
    folder.mkdir(parents=True)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"img{seed}.png")
    return root / name


@pytest.fixture()
def sources(tmp_path: Path) -> tuple[SourceSpec, ...]:
    # Source 0 (NC) holds a copy of one image of source 1 (CC BY): deduplication
    # keeps source 0's copy, and denying NC must keep source 1's instead.
    nc = _folder(tmp_path, "nc", [1, 2, 10])
    by = _folder(tmp_path, "by", [10, 11, 12])
    unknown = _folder(tmp_path, "unknown", [20, 21])
    return (SourceSpec(str(nc), license="CC BY-NC 4.0"), SourceSpec(str(by), license="CC-BY-4.0"), SourceSpec(str(unknown)))


def _run(tmp_path: Path, sources: tuple[SourceSpec, ...], policy: LicenseConfig, name: str) -> tuple[dict, list[dict], list[dict]]:
    out = tmp_path / name
    build(BuildConfig(sources=sources, output=str(out), image=ImageConfig(size_px=16), workers=1, executor="serial",
                      licenses=policy))
    manifest = json.loads((out / "manifest.json").read_text())
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    return manifest, rejected, rows


def test_names_normalize() -> None:
    assert normalize_license("CC BY-NC 4.0") == normalize_license("cc-by-nc-4.0") == "cc-by-nc-4.0"
    assert normalize_license("MIT License") == "mit"
    assert normalize_license(None) == normalize_license("Unknown") == "unknown"
    assert restrictions("CC BY-NC-ND 4.0") == ["NC", "ND"]
    assert restrictions("cc-by-4.0") == [] and restrictions("") == ["unknown"]
    assert license_refusal("CC BY 4.0", ["cc-by-*"], [], False) is None
    assert "license-deny" in license_refusal("cc-by-nc-4.0", [], ["CC BY-NC*"], False)


def test_deny_keeps_the_allowed_copy_of_a_duplicate(tmp_path: Path, sources: tuple[SourceSpec, ...]) -> None:
    manifest, rejected, rows = _run(tmp_path, sources, LicenseConfig(deny=("cc-by-nc*",)), "deny")
    assert manifest["licenses"] == {"CC-BY-4.0": 3, "unknown": 2}
    lic = [r for r in rejected if r["reason"] == "license"]
    assert len(lic) == 3 and all("CC BY-NC 4.0" in r["detail"] for r in lic)
    # img10 came from source 0 and source 1: source 1's copy is in the dataset.
    assert sorted(r["key"] for r in rows if r["source"] == sources[1].uri) == ["cls/img10.png", "cls/img11.png", "cls/img12.png"]
    assert not [r for r in rejected if r["reason"] == "duplicate"]
    assert manifest["rejections"] == {"license": 3}
    assert manifest["config"]["licenses"] == {"allow": [], "deny": ["cc-by-nc*"], "require": False}


def test_allow_and_require(tmp_path: Path, sources: tuple[SourceSpec, ...]) -> None:
    manifest, rejected, _ = _run(tmp_path, sources, LicenseConfig(allow=("cc-by-4.0",)), "allow")
    assert manifest["licenses"] == {"CC-BY-4.0": 3}
    # The NC copy of img10 is refused, the CC BY copy kept; the unknown ones are not allowed.
    assert sorted(r["detail"].split(": ", 1)[1] for r in rejected if r["reason"] == "license") == sorted(
        ["licence 'CC BY-NC 4.0' is not in --license-allow cc-by-4.0"] * 3 + ["licence 'unknown' is not in --license-allow cc-by-4.0"] * 2
    )
    manifest, rejected, _ = _run(tmp_path, sources, LicenseConfig(require=True), "require")
    assert manifest["licenses"] == {"CC BY-NC 4.0": 3, "CC-BY-4.0": 2}
    assert [r["source"].endswith(("img20.png", "img21.png")) for r in rejected if r["reason"] == "license"] == [True, True]


def test_per_source_policy_replaces_the_global_one(tmp_path: Path, sources: tuple[SourceSpec, ...]) -> None:
    import dataclasses

    own = (dataclasses.replace(sources[0], license_deny=()), sources[1], sources[2])
    manifest, _, _ = _run(tmp_path, own, LicenseConfig(deny=("cc-by-nc*", "unknown")), "per-source")
    assert manifest["licenses"] == {"CC BY-NC 4.0": 3, "CC-BY-4.0": 2}


def test_no_policy_leaves_the_config_as_it_was() -> None:
    data = BuildConfig().to_json()
    assert "licenses" not in data
    config = build_config_from_mapping({"sources": [{"uri": "synth:shapes", "license_allow": ["mit"]}],
                                        "licenses": {"deny": ["cc-by-nd*"], "require": True}})
    assert config.sources[0].license_allow == ("mit",)
    assert config.licenses == LicenseConfig(deny=("cc-by-nd*",), require=True)
    assert config.to_json()["sources"][0]["license_allow"] == ["mit"]


def test_cli_flags(tmp_path: Path, sources: tuple[SourceSpec, ...]) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["build", sources[1].uri, sources[2].uri, "-o", str(out), "--size", "16", "-q",
                                       "--workers", "1", "--require-license", "--license-allow", "cc-by-4.0",
                                       "--license", "CC BY 4.0"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_samples"] == 5 and manifest["licenses"] == {"CC BY 4.0": 5}
