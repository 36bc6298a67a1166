from __future__ import annotations

import pytest
import torch

from gantrain.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from gantrain.errors import ConfigError, DataError, RunError
from gantrain.train import resume_config, train

from .conftest import tiny_config, write_dataset


def test_round_trip_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    state = {"step": 3, "generator": {"w": torch.arange(4.0)}, "rng": {"python": (3, tuple(range(5)), None)}}
    save_checkpoint(state, path)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and torch.equal(loaded["generator"]["w"], torch.arange(4.0))
    assert loaded["format"] == "gantrain-checkpoint" and loaded["version"] == 1


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(RunError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    other = tmp_path / "other.pt"
    torch.save({"format": "gantrain-checkpoint", "version": 99}, other)
    with pytest.raises(RunError, match="version 99"):
        load_checkpoint(other)
    with pytest.raises(RunError, match="holds no checkpoint"):
        (tmp_path / "run").mkdir()
        find_checkpoint(tmp_path / "run")


def _assert_same_state(a: dict, b: dict, path: str = "") -> None:
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), path  # bit for bit
    else:
        assert a == b, path


@pytest.mark.parametrize(
    "options",
    [
        {"conditional": True, "ema": True, "flip": True, "diffaugment": ("color", "translation", "cutout")},
        {"loss": "hinge", "spectral_norm": True, "placement": "stream"},
    ],
    ids=["cond-ema-augment", "hinge-sn-stream"],
)
def test_resume_is_exact(tiny_dataset, tmp_path, options):
    """N steps straight == k steps + resume + N - k steps, bit for bit."""
    straight = tiny_config(tiny_dataset, tmp_path / "a", steps=6, deterministic=True, **options)
    train(straight)
    first = tiny_config(tiny_dataset, tmp_path / "b", steps=3, deterministic=True, **options)
    train(first)
    resumed = resume_config(tmp_path / "b", {"steps": 6})
    assert resumed.steps == 6 and resumed.conditional == straight.conditional
    train(resumed, resume=True)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    for key in ("generator", "discriminator", "ema", "opt_g", "opt_d", "rng"):
        _assert_same_state(a[key], b[key], key)
    # The resumed run's metrics continue where the first part stopped.
    steps = [line.split(",")[0] for line in (tmp_path / "b" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["2", "3", "4", "6"]


def test_resume_refuses_changes_that_make_another_experiment(tiny_dataset, tmp_path):
    train(tiny_config(tiny_dataset, tmp_path / "run", steps=2))
    with pytest.raises(ConfigError, match="--ngf: the run was trained with 4"):
        resume_config(tmp_path / "run", {"ngf": 8})
    other = write_dataset(tmp_path / "other", n=40, seed=1)
    config = resume_config(tmp_path / "run", {"steps": 3, "data": str(other)})
    with pytest.raises(DataError, match="not the dataset the run was trained on"):
        train(config, resume=True)
    with pytest.raises(RunError, match="no checkpoint to resume"):
        resume_config(tmp_path / "nothing")
