"""Every shell command README.md shows, run as written on tiny data, so the
README cannot drift from the program (issue 17).

Commands are read from the README's ```bash blocks. Each ``gandata`` and
``gantrain`` command runs in a scratch folder that holds what the README
assumes (./photos, photos.zip + labels.csv, examples/), through ``python -m``
so the checkout under test is the one that runs. gantrain commands get CPU-
and test-sized options appended (click keeps the last value of an option;
the synthetic fill's classifier gets as few steps),
which changes how long they run, not what they accept. Commands that install
packages, start clusters or need credentials are listed in SKIPPED with the
reason; ``test_every_readme_command_is_run_or_skipped_for_a_reason`` keeps
that list honest without running anything.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# Prefixes of README commands that are not run here, and why.
SKIPPED = {
    "pip install": "installs packages (.ci/run runs the README's install + test command in a fresh venv)",
    "pytest": "the test suite itself (.ci/run)",
    "python benchmarks/": "a benchmark of minutes, not a check",
    "ray start": "starts a Ray cluster",
    "export ": "sets cloud credentials",
    "gandata build s3://": "needs an object store (tests/gandata/test_object_storage.py runs one locally)",
    "gandata build /shared/": "needs a Ray cluster and a shared file system",
}

# Appended to gantrain commands: tiny networks, a few CPU steps.
GANTRAIN_TINY = {
    "train": ["--steps", "4", "--batch-size", "8", "--ngf", "8", "--ndf", "8", "--nz", "8", "--sample-every", "2",
              "--checkpoint-every", "2", "--eval-every", "0", "--classifier-steps", "2", "--device", "cpu"],
    "sample": ["--device", "cpu"],
    "eval": ["--samples", "20", "--classifier-steps", "2", "--device", "cpu"],
}


def readme_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks: continuation lines joined,
    comments dropped, ``a && b`` split into two."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"(^|\s)#(\s.*)?$", "", line).strip()
            if line:
                commands += [part.strip() for part in line.split("&&")]
    return commands


def skip_reason(command: str) -> str | None:
    """Why ``command`` is not run here, or None when it is."""
    return next((why for prefix, why in SKIPPED.items() if command.startswith(prefix)), None)


def test_every_readme_command_is_run_or_skipped_for_a_reason() -> None:
    commands = readme_commands(README.read_text())
    assert "gandata build" in commands
    assert any(c.startswith("gantrain train gandata-out -o runs/first") for c in commands)
    for command in commands:
        program = command.split()[0]
        assert program in ("gandata", "gantrain") or skip_reason(command), f"README command not covered: {command}"


def _scratch(tmp: Path) -> None:
    """What the README's commands assume: ./photos (two classes), photos.zip
    with labels.csv, and the examples folder."""
    rng = np.random.default_rng(0)
    photos = tmp / "photos"
    rows = ["path,label"]
    for cls in ("cat", "dog"):
        (photos / cls).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(photos / cls / f"{i}.jpg", quality=90)
            rows.append(f"{cls}/{i}.jpg,{cls}")
    shutil.make_archive(str(tmp / "photos"), "zip", photos)
    (tmp / "labels.csv").write_text("\n".join(rows) + "\n")
    shutil.copytree(REPO / "examples", tmp / "examples")


def _argv(command: str) -> list[str]:
    args = shlex.split(command)
    program, rest = args[0], args[1:]
    if program == "gantrain" and rest and rest[0] in GANTRAIN_TINY:
        rest = rest + GANTRAIN_TINY[rest[0]]
    if program == "gandata" and "--synth-filter" in rest:
        # The filter's classifier: as few steps as gantrain eval's above.
        rest = rest + ["--synth-option", "classifier_steps=2"]
    return [sys.executable, "-m", program, *rest]


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    _scratch(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "GANTRAIN_CACHE": str(tmp_path / "cache")}
    ran = 0
    for command in readme_commands(README.read_text()):
        if skip_reason(command):
            continue
        result = subprocess.run(_argv(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        ran += 1
    assert ran >= 15
    # What the first screen promises to look at.
    assert list((tmp_path / "runs" / "first" / "samples").glob("*.png"))
    assert (tmp_path / "samples.png").is_file()
