from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gantrain.cli import main

TINY = ["--batch-size", "8", "--ngf", "4", "--ndf", "4", "--nz", "8", "--log-every", "1", "--eval-every", "0", "--device", "cpu"]


def _run(args, ok=True):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_dry_run_prints_the_resolved_config(tiny_dataset, tmp_path):
    out = _run(["train", str(tiny_dataset), "-o", str(tmp_path / "run"), "--conditional", "--dry-run", *TINY]).output
    resolved = json.loads(out)
    assert resolved["model"]["image_size"] == 32 and resolved["model"]["num_classes"] == 3
    assert resolved["train"]["conditional"] is True
    assert resolved["runtime"]["device"] == "cpu" and resolved["runtime"]["precision"] == "fp32"
    assert len(resolved["dataset"]["manifest_sha256"]) == 64
    assert not (tmp_path / "run").exists()


def test_train_resume_sample_eval(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    _run(["train", str(tiny_dataset), "-o", str(run), "--steps", "2", "--conditional", "--ema", *TINY])
    # --steps is the total; --resume continues the run in -o up to it.
    out = _run(["train", str(tiny_dataset), "-o", str(run), "--steps", "3", "--resume"]).output
    assert "done: step 3" in out
    bad = _run(["train", str(tiny_dataset), "-o", str(run), "--steps", "4", "--resume", "--ngf", "8"], ok=False)
    assert bad.exit_code == 2 and "--ngf: the run was trained with 4" in bad.output
    again = _run(["train", str(tiny_dataset), "-o", str(run), "--steps", "4", *TINY], ok=False)
    assert again.exit_code == 2 and "--resume" in again.output

    grid = tmp_path / "grid.png"
    out = _run(["sample", str(run), "-n", "12", "-o", str(grid)]).output
    assert "wrote 12 samples" in out and "EMA" in out
    # One row per class, enlarged 3x (32 px cells to >= 96 px), class names in a left margin.
    width, height = Image.open(grid).size
    assert height == 3 * (3 * 34 + 2) and width > 3 * (4 * 34 + 2)

    arrays = tmp_path / "s.npz"
    _run(["sample", str(run), "-n", "5", "-o", str(arrays), "--class", "c", "--no-ema"])
    with np.load(arrays) as data:
        assert data["images"].shape == (5, 3, 32, 32) and data["images"].dtype == np.uint8
        assert data["labels"].tolist() == [2] * 5
    bad = _run(["sample", str(run), "-o", str(grid), "--class", "zebra"], ok=False)
    assert bad.exit_code == 2 and "zebra" in bad.output and "a, b, c" in bad.output

    out = _run(["eval", str(run), "--samples", "20", "--classifier-steps", "2", "--cache-dir", str(tmp_path / "c"), "--device", "cpu"]).output
    assert "protocol: 20 generated vs 20 real" in out and "Frechet distance" in out and "classified as asked" in out
    report = json.loads(_run(["eval", str(run), "--samples", "20", "--classifier-steps", "2", "--cache-dir", str(tmp_path / "c"), "--device", "cpu", "--json"]).output)
    assert report["num_samples"] == 20 and report["class_accuracy"] is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "{missing}", "-o", "{run}"], "DATA"),
        (["train", "{data}", "-o", "{run}", "--diffaugment", "zoom"], "--diffaugment"),
        (["train", "{data}", "-o", "{run}", "--batch-size", "0"], "--batch-size"),
        (["sample", "{data}", "-o", "{run}/x.png"], "RUN"),
    ],
)
def test_errors_name_the_option(tiny_dataset, tmp_path, args, message):
    args = [a.format(missing=tmp_path / "missing", run=tmp_path / "run", data=tiny_dataset) for a in args]
    result = _run(args, ok=False)
    assert result.exit_code == 2  # a bad option or input (README "Exit status")
    assert message in result.output and "error: " in result.output
    assert "Traceback" not in result.output


def test_python_m_gantrain_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "gantrain", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("train", "sample", "eval"):
        assert command in out
