"""The dataset card (README.md) every build writes: HuggingFace front matter,
the licence facts, cleaning, balance, the rebuild command; `gandata stats --card`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gandata.cli import main
from gandata.config import BalanceConfig, BuildConfig, ImageConfig, SourceSpec
from gandata.dataset.card import (
    dataset_name,
    license_facts,
    rebuild_command,
    render_card,
    size_category,
)
from gandata.pipeline import build


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The YAML front matter of a card as the Hub reads it, for the subset the
    card uses: ``key: scalar`` and ``key:`` followed by ``- item`` lines;
    scalars plain or double-quoted (JSON escapes)."""
    lines = text.split("\n")
    assert lines[0] == "---", "a card starts with its front matter"
    end = lines.index("---", 1)
    data: dict[str, Any] = {}
    key = None

    def scalar(raw: str) -> str:
        raw = raw.strip()
        return json.loads(raw) if raw.startswith('"') else raw

    for line in lines[1:end]:
        if line.startswith("- "):
            assert key is not None and isinstance(data[key], list)
            data[key].append(scalar(line[2:]))
            continue
        name, sep, rest = line.partition(":")
        assert sep and name.strip() and not line.startswith(" "), f"unexpected front matter line {line!r}"
        key = name.strip()
        data[key] = scalar(rest) if rest.strip() else []
    return data, "\n".join(lines[end + 1:])


def _build(out: Path, **kw: Any) -> Path:
    sources = kw.pop("sources", (SourceSpec("synth:shapes?count=120&imbalance=4"),))
    build(BuildConfig(sources=sources, output=str(out), image=ImageConfig(size_px=16), workers=1, executor="serial", **kw))
    return out


def test_card_front_matter_and_sections(tmp_path: Path) -> None:
    out = _build(tmp_path / "faces", balance=BalanceConfig(mode="oversample"), seed=3,
                 sources=(SourceSpec("synth:shapes?count=120&imbalance=4", license="CC BY-NC 4.0"),))
    text = (out / "README.md").read_text(encoding="utf-8")
    meta, body = parse_front_matter(text)
    manifest = json.loads((out / "manifest.json").read_text())
    assert meta["pretty_name"] == "shapes"
    assert meta["license"] == "cc-by-nc-4.0"
    assert meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["unconditional-image-generation", "image-classification"]
    assert meta["source_datasets"] == ["original"]
    # The restriction is stated at the top, before any section.
    first_section = body.index("\n## ")
    assert "non-commercial (NC)" in body[:first_section] and f"{manifest['num_samples']} of" in body[:first_section]
    for heading in ("## Sources", "## Licences", "## Cleaning", "## Class balance", "## Synthetic samples", "## Format", "## Rebuild"):
        assert heading in body
    # Before/after balancing: the before counts sum to the originals.
    table = body[body.index("| class | before balancing | after |"):].split("\n\n", 1)[0].split("\n")[2:]
    rows = {r.split("|")[1].strip(): (int(r.split("|")[2]), int(r.split("|")[3])) for r in table}
    assert {k: v[1] for k, v in rows.items()} == manifest["class_counts"]
    assert sum(v[0] for v in rows.values()) < manifest["num_samples"]
    assert "seed: 3" in body and "None: every sample is an image" in body
    assert "```toml\n[[sources]]\nuri = \"synth:shapes?count=120&imbalance=4\"\nlicense = \"CC BY-NC 4.0\"\n```" in body


def test_rebuild_command_rebuilds_the_same_dataset(tmp_path: Path) -> None:
    out = _build(tmp_path / "a", sources=(SourceSpec("synth:shapes?count=40"),), seed=5)
    manifest = json.loads((out / "manifest.json").read_text())
    command, toml = rebuild_command(manifest["config"])
    assert toml is None
    args = shlex.split(command)
    assert args[:3] == ["gandata", "build", "synth:shapes?count=40"] and "--seed" in args and "--size" in args
    assert args[args.index("-o") + 1] == "OUT"
    # Run it (into another folder, one worker): same shards, same fingerprint.
    args[args.index("-o") + 1] = str(tmp_path / "b")
    result = CliRunner().invoke(main, ["build", *args[2:], "-q", "--workers", "1"])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert again["build_fingerprint"] == manifest["build_fingerprint"]
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in manifest["shards"]]


def test_card_is_ours_and_rebuild_is_up_to_date(tmp_path: Path) -> None:
    out = _build(tmp_path / "d", sources=(SourceSpec("synth:shapes?count=30"),))
    first = (out / "README.md").read_bytes()
    summary = build(BuildConfig(sources=(SourceSpec("synth:shapes?count=30"),), output=str(out), image=ImageConfig(size_px=16),
                                workers=1, executor="serial"))
    assert summary.up_to_date
    # Another build into the folder replaces the card with the dataset (README.md is not foreign).
    build(BuildConfig(sources=(SourceSpec("synth:shapes?count=31"),), output=str(out), image=ImageConfig(size_px=16),
                      workers=1, executor="serial", overwrite=True))
    assert (out / "README.md").read_bytes() != first
    result = CliRunner().invoke(main, ["stats", str(out), "--card"])
    assert result.exit_code == 0 and result.output == (out / "README.md").read_text(encoding="utf-8")


def test_render_without_build_figures_and_helpers() -> None:
    manifest = {
        "format": "gandata", "version": 1, "num_samples": 12_000, "image_shape": [1, 32, 32], "dtype": "uint8",
        "classes": [], "class_counts": {}, "num_unlabeled": 12_000, "licenses": {"cc-by-4.0": 10_000, "unknown": 2_000},
        "sources": [{"uri": "hf:mnist", "num_samples": 12_000, "num_rejected": 3, "license": "mit", "licenses": {}}],
        "rejections": {"duplicate": 3}, "shards": [], "seed": 0, "normalization": {"mode": "zero-1"},
        "config": {"output": "s3://bucket/data/digits", "sources": [{"uri": "hf:mnist"}]},
    }
    meta, body = parse_front_matter(render_card(manifest))
    assert meta["license"] == ["cc-by-4.0", "unknown"]
    assert meta["size_categories"] == ["10K<n<100K"] and meta["source_datasets"] == ["extended|mnist"]
    assert meta["task_categories"] == ["unconditional-image-generation"] and meta["pretty_name"] == "mnist"
    assert "2000 of 12000 samples (16.7%) are under an unknown licence" in body
    assert "| `duplicate` | 3 |" in body
    assert size_category(999) == "n<1K" and size_category(1000) == "1K<n<10K"
    assert license_facts({"cc-by-4.0": 3}) == []
    # The card does not depend on where the dataset was built.
    assert render_card({**manifest, "config": {**manifest["config"], "output": "/tmp/x/ds"}}) == render_card(manifest)
    assert dataset_name([{"uri": "s3://b/photos/"}, {"uri": "urls:/x/list.csv"}, {"uri": "crawl:https://h/gallery?x=1"}]) == \
        "photos + list + gallery"


@pytest.mark.parametrize("licenses,expected", [({"CC BY-ND 4.0": 2, "cc-by-nc-nd-4.0": 1}, ["NC", "ND"])])
def test_license_facts_name_each_restriction(licenses: dict[str, int], expected: list[str]) -> None:
    facts = " ".join(license_facts(licenses))
    assert "1 of 3 samples (33.3%) are under non-commercial (NC) licences: cc-by-nc-nd-4.0 (1)." in facts
    assert "3 of 3 samples (100.0%) are under no-derivatives (ND) licences" in facts


def test_undersampling_counts_before_include_the_dropped(tmp_path: Path) -> None:
    out = _build(tmp_path / "u", balance=BalanceConfig(mode="undersample"))
    manifest = json.loads((out / "manifest.json").read_text())
    _, body = parse_front_matter((out / "README.md").read_text(encoding="utf-8"))
    table = body[body.index("| class | before balancing | after |"):].split("\n\n", 1)[0].split("\n")[2:]
    before = {r.split("|")[1].strip(): int(r.split("|")[2]) for r in table}
    assert sum(before.values()) == manifest["num_samples"] + manifest["rejections"]["undersampled"]
    assert len(set(manifest["class_counts"].values())) == 1 and len(set(before.values())) > 1
