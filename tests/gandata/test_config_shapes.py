"""Config files of the wrong shape (issue 15, bug 10): a ConfigError naming
the key, never a TypeError, both through the loader and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gandata.cli import main
from gandata.config import build_config_from_mapping, load_config_file
from gandata.errors import ConfigError

WRONG = {
    "image = 5\n": "image",
    "sources = 7\n": "sources",
    "format = [1, 2]\n": "format",
    '[[sources]]\nuri = "synth:shapes"\nparams = 5\n': r"sources\[0\].params",
    '[[sources]]\nuri = 5\n': r"sources\[0\].uri",
    '[[sources]]\nuri = "synth:shapes"\nlabels = 3\n': r"sources\[0\].labels",
    '[[sources]]\nuri = "synth:shapes"\nlabel_map = 3\n': r"sources\[0\].label_map",
    '[[sources]]\nuri = "synth:shapes"\nweight = "heavy"\n': r"sources\[0\].weight",
    "[image]\nsize = \"big\"\n": "image.size",
    "[image]\nmax_upscale = nan\n": "image.max_upscale",
    "[balance]\nsampling_strategy = [1]\n": "balance.sampling_strategy",
    "[clean]\nskip = 3\n": "clean.skip",
    "seed = 1.5\n": "seed",
}


@pytest.mark.parametrize("text", sorted(WRONG))
def test_a_config_of_the_wrong_shape_is_a_config_error_naming_the_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=WRONG[text]):
        build_config_from_mapping(load_config_file(path))
    result = CliRunner().invoke(main, ["build", "--config", str(path), "--dry-run", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output


@pytest.mark.parametrize("flag", ["--max-upscale", "--draft-gap", "--min-std", "--val-fraction", "--near-dup-similarity",
                                  "--max-removed-share", "--synth-filter"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinities_are_refused_for_float_options(tmp_path: Path, flag: str, value: str) -> None:
    result = CliRunner().invoke(main, ["build", flag, value, "--dry-run", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and flag.lstrip("-").replace("-", "_") in result.output.replace("-", "_"), result.output
