"""The gandata command line through click's CliRunner: each command's happy
path and an error path, and the option table that makes the flags."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gandata.cli import main
from gandata.config import OPTIONS, BuildConfig, build_config_from_mapping
from gandata.config.options import SECTIONS

TINY = ["synth:shapes?count=40&size=24", "--size", "16", "--workers", "1", "--shard-size", "16", "-q"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ds"
    result = CliRunner().invoke(main, ["build", *TINY, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_build_writes_a_dataset_and_a_rerun_is_up_to_date(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["num_samples"] > 0 and manifest["image_shape"] == [3, 16, 16]
    result = CliRunner().invoke(main, ["build", *TINY[:-1], "-o", str(built)])
    assert result.exit_code == 0 and "already built" in result.output


def test_build_bad_option_is_one_line_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["build", "synth:shapes?count=4", "--size", "2", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: --size: 2 is out of range (4..4096)"]


def test_build_config_file_unknown_key_names_it(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[image]\nsize = 32\nsharpness = 3\n")
    result = CliRunner().invoke(main, ["build", "-c", str(config), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "image.sharpness: unknown option" in result.output


def test_dry_run_prints_the_resolved_config_and_stops(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["build", *TINY, "--draft-gap", "2", "-o", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"draft_gap": 2.0' in result.output and "build fingerprint:" in result.output
    assert not out.exists()


def test_verify_ok_and_tampered(built: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["verify", str(built)])
    assert result.exit_code == 0 and "OK" in result.output
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    shard = sorted((copy / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["verify", str(copy)])
    assert result.exit_code == 1 and shard.name in result.output


def test_stats_table_and_json(built: Path) -> None:
    result = CliRunner().invoke(main, ["stats", str(built)])
    assert result.exit_code == 0 and "imbalance ratio" in result.output
    data = json.loads(CliRunner().invoke(main, ["stats", str(built), "--json"]).output)
    assert data["num_samples"] == json.loads((built / "manifest.json").read_text())["num_samples"]


def test_stats_of_a_missing_target_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["stats", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and result.output.startswith("error: ")


def test_preview_and_export(built: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["preview", str(built), "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 0 and (tmp_path / "grid.png").stat().st_size > 0
    result = CliRunner().invoke(main, ["export", str(built), "--to", "folder", str(tmp_path / "folder"), "-q"])
    assert result.exit_code == 0, result.output
    assert sum(1 for _ in (tmp_path / "folder").rglob("*.png")) > 0


def test_clean_takes_the_image_options_of_build(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["clean", "synth:shapes?count=20&size=24", "--report", str(tmp_path / "r"),
                                       "--size", "16", "--draft-gap", "2", "--min-size", "8", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["num_inputs"] == 20


def test_option_table_covers_every_config_field() -> None:
    """Every dataclass field a config file can set has exactly one table row."""
    keys = {o.key for o in OPTIONS}
    assert len(keys) == len(OPTIONS)
    for section, cls in SECTIONS.items():
        # The top level's nested sections ("format" is the field "out") are not options.
        skip = ({name for name in SECTIONS if name} | {"out", "sources"}) if not section else set()
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            assert any(o.section == section and o.field_name == f.name for o in OPTIONS), f"{section}.{f.name}"


def test_every_flag_is_in_build_help_with_its_dataclass_default() -> None:
    help_text = " ".join(CliRunner().invoke(main, ["build", "--help"], terminal_width=400).output.split())
    for option in OPTIONS:
        if option.flag and "build" in option.commands:
            assert option.flag in help_text, option.flag
            shown = option.default_help()
            if shown is not None and option.default_text is None:
                assert f"[default: {shown}]" in help_text, option.flag


def test_every_flag_sets_its_config_key(tmp_path: Path) -> None:
    """A flag given on the command line lands in the config key the table names."""
    assert build_config_from_mapping({}) == BuildConfig()
    result = CliRunner().invoke(main, ["build", "synth:shapes?count=10", "--dry-run", "--size", "32", "--no-clean",
                                       "--skip-check", "blurry", "--synth-option", "ema=0", "--balance", "oversample",
                                       "--channels", "1", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.output[: result.output.index("\nsource ")])
    assert resolved["image"]["size_px"] == 32 and resolved["image"]["channels"] == 1
    assert resolved["clean"]["enabled"] is False and resolved["clean"]["skip"] == ["blurry"]
    assert resolved["balance"]["mode"] == "oversample"
