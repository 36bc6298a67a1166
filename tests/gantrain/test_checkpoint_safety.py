"""Malformed but safe checkpoints (issue 15, bug 9): gantrain sample and the
gan: source refuse them with one RunError naming the file, before allocating a
model from their numbers."""

from __future__ import annotations

import resource

import pytest
import torch
from click.testing import CliRunner

from gantrain.checkpoint import find_checkpoint
from gantrain.cli import main
from gantrain.errors import RunError
from gantrain.sample import load_generator
from gantrain.train import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def saved(tiny_dataset, tmp_path_factory):  # type: ignore[no-untyped-def]
    run = tmp_path_factory.mktemp("ckpt") / "run"
    torch.set_num_threads(1)
    train(tiny_config(tiny_dataset, run, conditional=True, steps=2))
    path = find_checkpoint(run, "last")
    return torch.load(path, weights_only=True), path


def _write(tmp_path, state):  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("mutate", [
    lambda s: s.update(model=5),
    lambda s: s.update(model={**s["model"], "image_size": "big"}),
    lambda s: s.update(model={k: v for k, v in s["model"].items() if k != "channels"}),
    lambda s: s.update(model={**s["model"], "unknown_field": 1}),
    lambda s: s.update(model={**s["model"], "nz": -3}),
    lambda s: s.update(model={**s["model"], "classes": 7}),
    lambda s: s.update(generator={}),
    lambda s: s.update(generator={k: v[..., :1] if v.ndim else v for k, v in s["generator"].items()}),
    lambda s: s.update(generator=[1, 2, 3]),
    lambda s: s.pop("generator"),
    lambda s: s.update(step="many"),
], ids=["model-int", "size-str", "no-channels", "unknown-field", "negative-nz", "classes-int", "empty-state",
        "wrong-shapes", "state-list", "no-generator", "step-str"])
def test_malformed_checkpoints_are_one_line_errors(saved, tmp_path, mutate) -> None:  # type: ignore[no-untyped-def]
    state, _ = saved
    state = {**state}
    mutate(state)
    path = _write(tmp_path, state)
    with pytest.raises(RunError, match=str(path.name)):
        load_generator(path, ema=False)
    result = CliRunner().invoke(main, ["sample", str(path), "-o", str(tmp_path / "g.png")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "Traceback" not in result.output


def test_a_huge_width_is_refused_before_allocating(saved, tmp_path) -> None:  # type: ignore[no-untyped-def]
    state, _ = saved
    state = {**state, "model": {**state["model"], "ngf": 300_000}}
    path = _write(tmp_path, state)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # 7.7 GB would be allocated by building the model first; 2 GiB more than
    # this process holds is plenty for the check itself.
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + 2 * 2**30, hard))
    try:
        with pytest.raises(RunError, match="ngf"):
            load_generator(path, ema=False)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
