"""The [balance] config section and the build command's balance flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gandata.cli import main
from gandata.config import (
    BalanceConfig,
    build_config_from_mapping,
    load_config_file,
    parse_sampling_strategy,
)
from gandata.errors import ConfigError
from tests.common.balance_helpers import make_folder


def test_toml_balance_section(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(
        '[balance]\nmode = "oversample"\nsampling-strategy = {cat = 50}\naugment = true\n'
        'augmentations = ["hflip", "color"]\nval_fraction = 0.1\nmin_class_count = 3\n'
    )
    config = build_config_from_mapping(load_config_file(path))
    assert config.balance == BalanceConfig(
        mode="oversample", sampling_strategy={"cat": 50}, augmentations=("hflip", "color"), val_fraction=0.1, min_class_count=3,
    )
    # The resolved config saved in the manifest loads back the same.
    assert build_config_from_mapping({"balance": config.to_json()["balance"]}).balance == config.balance


@pytest.mark.parametrize(
    "section, message",
    [
        ({"mode": "smote"}, "--balance: 'smote'"),
        ({"val_fraction": 1.5}, "--val-fraction"),
        ({"min_class_count": 0}, "--min-class-count"),
        ({"augmentations": ["vflip"]}, "balance.augmentations: 'vflip'"),
        ({"augment": "yes"}, "balance.augment"),
        ({"sampling_strategy": "sometimes"}, "balance.sampling_strategy"),
        ({"bogus": 1}, "balance.bogus: unknown option"),
    ],
)
def test_bad_balance_options_name_the_option(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config_from_mapping({"balance": section})
    assert message in str(info.value)


def test_sampling_strategy_parsing() -> None:
    assert parse_sampling_strategy("not_minority") == "not minority"
    assert parse_sampling_strategy("500") == 500
    assert parse_sampling_strategy('{"b": 2, "a": 1}') == {"a": 1, "b": 2}
    with pytest.raises(ConfigError, match="--sampling-strategy: .*not valid JSON"):
        parse_sampling_strategy("{cat: 5}")
    with pytest.raises(ConfigError, match="positive"):
        parse_sampling_strategy(0)


def test_build_flags_reach_the_config_and_the_build(tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"a": 12, "b": 4})
    out = tmp_path / "ds"
    args = ["build", str(src), "-o", str(out), "--size", "16", "--workers", "1", "--executor", "serial", "-q"]
    result = CliRunner().invoke(main, args + ["--balance", "oversample", "--sampling-strategy", '{"b": 8}', "--no-augment", "--val-fraction", "0.25", "--dry-run"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output[: result.output.rindex("}") + 1])
    assert shown["balance"] == {
        "mode": "oversample", "sampling_strategy": {"b": 8}, "augment": False, "augmentations": ["hflip", "affine", "color"],
        "min_class_count": 1, "drop_small_classes": False, "undersample_by_cluster": True, "val_fraction": 0.25,
    }
    result = CliRunner().invoke(main, args + ["--balance", "oversample", "--sampling-strategy", '{"b": 8}', "--no-augment", "--val-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    # Val takes 3 of a and 1 of b; train b (3 originals) is raised to 8.
    assert manifest["splits"] == {"train": 9 + 8, "val": 4}
    assert manifest["class_counts"] == {"a": 12, "b": 9}
    result = CliRunner().invoke(main, args + ["--balance", "undersample", "--min-class-count", "5", "--overwrite"])
    assert result.exit_code == 2 and "--min-class-count" in result.output and "'b' (4)" in result.output
