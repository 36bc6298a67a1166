"""The gandata command line as a new user meets it (issue 17): one error
style and exit statuses shared with gantrain, errors that name what is wrong,
progress in images, grouped --help, and docs examples that build what they
say."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gandata.cli import main
from gandata.cli.progress import PhaseBars
from gandata.dataset.verify import verify_dataset

REPO = Path(__file__).resolve().parents[2]
TINY = ["--size", "16", "--workers", "1", "-q"]


def _run(args: list[str], code: int = 0):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "data"
    _run(["build", "synth:shapes?count=100&size=16", "-o", str(out), "--val-fraction", "0.2", *TINY])
    return out


def test_usage_errors_print_one_error_line_and_exit_2() -> None:
    result = _run(["build", "--sizee", "3"], code=2)
    assert "error: No such option '--sizee'" in result.output and "Error:" not in result.output


def test_bad_input_exits_2_and_a_damaged_dataset_exits_1(dataset: Path, tmp_path: Path) -> None:
    missing = _run(["verify", str(tmp_path / "nothing")], code=2)
    assert missing.output.startswith("error: ")
    damaged = tmp_path / "damaged"
    _run(["build", "synth:shapes?count=40&size=16", "-o", str(damaged), *TINY])
    shard = next((damaged / "shards").glob("*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:-8] + b"xxxxxxxx")
    failed = _run(["verify", str(damaged)], code=1)
    assert f"error: {damaged} failed verification" in failed.output and shard.name in failed.output


def test_a_source_scheme_typo_names_the_known_schemes(tmp_path: Path) -> None:
    result = _run(["build", "synt:shapes", "-o", str(tmp_path / "x")], code=2)
    assert "unknown source kind 'synt:'; did you mean synth:?" in result.output
    assert "no such folder" not in result.output


def test_stats_split_typo_is_an_error(dataset: Path) -> None:
    result = _run(["stats", str(dataset), "--split", "vall"], code=2)
    assert "--split" in result.output and "'vall'" in result.output and "train, val" in result.output
    assert "samples" in _run(["stats", str(dataset), "--split", "val"]).output


def _photos(root: Path) -> Path:
    """Two classes of noise images and two unlabeled files at the root."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / f"loose{i}.png")
    (root / "a" / "broken.png").write_bytes(b"not an image")
    return root


def test_raw_stats_count_like_build_and_point_to_no_deleted_file(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos")
    built = _run(["build", str(photos), "-o", str(tmp_path / "out"), "--size", "16", "--workers", "1"]).output
    assert "built" in built and ": 14 samples" in built
    raw = _run(["stats", str(photos), "--size", "16", "--workers", "1"]).output
    assert "14 samples (12 labelled, 2 unlabeled)" in raw
    assert "rejected.jsonl" not in raw and "gandata clean" in raw
    dataset = _run(["stats", str(tmp_path / "out")]).output
    assert "14 samples (12 labelled, 2 unlabeled)" in dataset and "details in rejected.jsonl" in dataset


def test_clean_report_has_no_class_called_none(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos")
    _run(["clean", str(photos), "--report", str(tmp_path / "report"), "--size", "16", "--workers", "1", "-q"])
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    classes = {name for per in summary["reasons_per_class"].values() for name in per}
    assert "None" not in classes and "(no class)" in classes


def test_build_help_is_grouped_by_the_option_table() -> None:
    text = _run(["build", "--help"]).output
    titles = ["Sources (", "Image (", "Cleaning (", "Balance and split (", "Output:", "Performance:", "Web sources ("]
    positions = [text.index(t) for t in titles]
    assert positions == sorted(positions)
    assert text.index("--size") > text.index("Image (") and text.index("--min-std") > text.index("Cleaning (")


def test_progress_off_a_terminal_is_plain_lines_for_long_phases_only() -> None:
    now = [0.0]
    stream = io.StringIO()
    bars = PhaseBars(quiet=False, stream=stream, interval_s=10, min_s=2, clock=lambda: now[0])
    bars("write", 0, 100)
    bars("write", 100, 100)  # done at once: silent
    bars("ingest", 0, 5000)
    now[0] = 11.0
    bars("ingest", 2500, 5000)
    now[0] = 12.0
    bars("ingest", 3000, 5000)  # within the interval: silent
    now[0] = 15.0
    bars("ingest", 5000, 5000)
    bars("ingest", 5000, 5000)  # reported twice, printed once
    assert stream.getvalue().splitlines() == ["ingest: 2500/5000 images (50%), 11 s", "ingest: 5000/5000 images (100%), 15 s"]
    assert "\r" not in stream.getvalue()
    quiet = io.StringIO()
    PhaseBars(quiet=True, stream=quiet, clock=lambda: 100.0)("ingest", 1, 1)
    assert quiet.getvalue() == ""


def test_verify_reports_progress_in_images(dataset: Path) -> None:
    seen: list[tuple[int, int]] = []
    assert verify_dataset(dataset, progress=lambda done, total: seen.append((done, total))).ok
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert seen[-1] == (manifest["num_samples"], manifest["num_samples"])


def test_hf_export_names_the_val_split_validation(dataset: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    _run(["export", str(dataset), "--to", "hf", str(tmp_path / "hf"), "-q"])
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert sorted(loaded.keys()) == ["train", "validation"]


def test_examples_shapes_toml_is_the_default_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fingerprint(*args: str) -> str:
        out = CliRunner().invoke(main, ["build", "--dry-run", *args], catch_exceptions=False).output
        return out.rsplit("build fingerprint: ", 1)[1].strip()

    monkeypatch.chdir(tmp_path)
    assert fingerprint() == fingerprint("--config", str(REPO / "examples" / "shapes.toml"))


def test_gantrain_without_torch_says_what_to_install() -> None:
    # sys.modules["torch"] = None makes `import torch` fail as if it were not installed.
    code = ("import sys; sys.modules['torch'] = None\n"
            "from gantrain.cli import main; main(['train', 'data', '-o', 'run'], prog_name='gantrain')")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line, no traceback
    assert result.stderr.startswith("error: gantrain needs PyTorch") and "download.pytorch.org/whl/cpu" in result.stderr


def test_gantrain_errors_use_the_same_style(tmp_path: Path) -> None:
    from gantrain.cli import main as gantrain_main

    result = CliRunner().invoke(gantrain_main, ["train", str(tmp_path / "missing"), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and result.output.startswith("error: DATA:")
    usage = CliRunner().invoke(gantrain_main, ["train", "--stepz", "3"])
    assert usage.exit_code == 2 and "error: No such option '--stepz'" in usage.output


def test_gantrain_progress_off_a_terminal_is_plain_lines() -> None:
    from gantrain.cli import TqdmReporter

    stream = io.StringIO()
    reporter = TqdmReporter(stream)
    reporter.start(100, 0)
    reporter.advance(50)
    reporter.log(50, {"loss_d": 0.5, "loss_g": 2.0, "d_real": 0.8, "d_fake": 0.2, "images_per_s": 123.0})
    reporter.close()
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines()[-1] == "train: step 50/100 loss_d 0.500 loss_g 2.000 d_x 0.80 d_gz 0.20 123 images/s"


def test_build_warns_about_a_class_left_empty(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "src.npz", images=images, labels=np.array([0, 1] * 4), classes=np.array(["r", "g", "star"]))
    result = _run(["build", f"npz:{tmp_path / 'src.npz'}", "-o", str(tmp_path / "out"), "--size", "16", "--workers", "1"])
    assert "warning: class 'star' has no samples" in result.output


def _split_class_counts(out: Path) -> dict[str, dict[str, int]]:
    """Samples per split and class of a built dataset (from samples.parquet)."""
    import pyarrow.parquet as pq

    counts: dict[str, dict[str, int]] = {}
    for row in pq.read_table(out / "samples.parquet", columns=["split", "class_name"]).to_pylist():
        per = counts.setdefault(row["split"], {})
        per[row["class_name"]] = per.get(row["class_name"], 0) + 1
    return counts


def test_a_val_fraction_that_cuts_nothing_next_to_a_sources_splits_is_warned(dataset: Path, tmp_path: Path) -> None:
    _run(["export", str(dataset), "--to", "folder", str(tmp_path / "tree"), "-q"])
    loud = [a for a in TINY if a != "-q"]
    warned = _run(["build", str(tmp_path / "tree"), "-o", str(tmp_path / "a"), "--val-fraction", "0.3", *loud])
    assert "warning: --val-fraction 0.3 cut no sample" in warned.output
    quiet = _run(["build", str(tmp_path / "tree"), "-o", str(tmp_path / "b"), *loud])
    assert "--val-fraction" not in quiet.output


def test_folder_export_of_two_splits_builds_back_as_one_dataset_with_its_splits(dataset: Path, tmp_path: Path) -> None:
    out = _run(["export", str(dataset), "--to", "folder", str(tmp_path / "tree")]).output
    assert f"gandata build {tmp_path / 'tree'}" in out and "build each on its own" not in out
    _run(["build", str(tmp_path / "tree"), "-o", str(tmp_path / "again"), *TINY])
    before = json.loads((dataset / "manifest.json").read_text())
    after = json.loads((tmp_path / "again" / "manifest.json").read_text())
    # The same classes in the same label-id order (the export's classes.txt),
    # and no split became a class.
    assert after["classes"] == before["classes"] and after["classes"] != sorted(after["classes"])
    assert after["splits"] == before["splits"] and set(after["splits"]) == {"train", "val"}
    assert _split_class_counts(tmp_path / "again") == _split_class_counts(dataset)
    assert after["preassigned_splits"] == before["splits"]


