from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from gantrain import losses
from gantrain.checkpoint import load_checkpoint
from gantrain.errors import ConfigError, DataError, NonFiniteError, RunError
from gantrain.train import resolve, train

from .conftest import tiny_config, write_dataset


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"loss": "hinge"},
        {"conditional": True},
        {"conditional": True, "loss": "hinge", "spectral_norm": True},
        {"ema": True, "flip": True},
        {"diffaugment": ("color", "translation", "cutout"), "conditional": True},
        {"placement": "stream"},
        {"precision": "bf16"},
    ],
    ids=["bce", "hinge", "conditional", "cond-hinge-sn", "ema-flip", "diffaugment", "stream", "bf16-cpu"],
)
def test_a_few_steps_of_each_loss_and_mode(tiny_dataset, tmp_path, options):
    config = tiny_config(tiny_dataset, tmp_path / "run", **options)
    result = train(config)
    assert result.step == 4
    state = load_checkpoint(result.last_checkpoint)
    assert state["step"] == 4
    assert (state["ema"] is not None) == bool(options.get("ema"))
    for value in state["generator"].values():
        assert torch.isfinite(value.float()).all()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(math.isfinite(float(r["loss_d"])) and float(r["images_per_s"]) > 0 for r in rows)


def test_run_directory_contents(tiny_dataset, tmp_path):
    config = tiny_config(tiny_dataset, tmp_path / "run", conditional=True, ema=True, sample_every=2, steps=4)
    train(config)
    run = tmp_path / "run"
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["train"]["steps"] == 4
    assert resolved["model"]["conditional"] is True
    assert resolved["dataset"]["manifest_sha256"] == load_checkpoint(run / "checkpoints" / "last.pt")["dataset"]["manifest_sha256"]
    assert resolved["runtime"]["precision"] == "fp32"
    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == ["step-0000002-ema.png", "step-0000002.png", "step-0000004-ema.png", "step-0000004.png"]
    from PIL import Image

    grid = Image.open(run / "samples" / "step-0000004.png")
    # One row per class (3 classes), 8 columns of 32 px with 2 px padding.
    assert grid.size == (8 * 34 + 2, 3 * 34 + 2)
    events = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "finished"


def test_resolve_refuses_bad_inputs(tmp_path):
    unlabeled = write_dataset(tmp_path / "u", n=16, classes=())
    with pytest.raises(ConfigError, match="--conditional"):
        resolve(tiny_config(unlabeled, tmp_path / "r", conditional=True))
    odd = write_dataset(tmp_path / "odd", n=16, size=48)
    with pytest.raises(ConfigError, match="48 px is not supported"):
        resolve(tiny_config(odd, tmp_path / "r"))
    with pytest.raises(ConfigError, match="--batch-size"):
        resolve(tiny_config(unlabeled, tmp_path / "r", batch_size=0))
    with pytest.raises(ConfigError, match="--loss"):
        resolve(tiny_config(unlabeled, tmp_path / "r", loss="wgan"))
    with pytest.raises(DataError, match="DATA"):
        resolve(tiny_config(tmp_path / "missing", tmp_path / "r"))
    with pytest.raises(ConfigError, match="--precision: fp16 needs a CUDA"):
        resolve(tiny_config(unlabeled, tmp_path / "r", precision="fp16"))


def test_unlabeled_dataset_trains_unconditionally(tmp_path):
    unlabeled = write_dataset(tmp_path / "u", n=16, classes=())
    assert train(tiny_config(unlabeled, tmp_path / "run", steps=2)).step == 2


def test_existing_run_is_not_overwritten(tiny_dataset, tmp_path):
    train(tiny_config(tiny_dataset, tmp_path / "run", steps=2))
    with pytest.raises(RunError, match="--resume"):
        train(tiny_config(tiny_dataset, tmp_path / "run", steps=2))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    d_loss, g_loss = losses.LOSSES["bce"]
    calls = {"n": 0}

    def poisoned(real, fake):
        calls["n"] += 1
        loss = d_loss(real, fake)
        return loss * math.nan if calls["n"] > 4 else loss

    monkeypatch.setitem(losses.LOSSES, "bce", (poisoned, g_loss))
    config = tiny_config(tiny_dataset, tmp_path / "run", steps=8, checkpoint_every=4, log_every=2, loss="bce")
    with pytest.raises(NonFiniteError, match="NaN/Inf") as info:
        train(config)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert info.value.last_good == str(last)
    state = load_checkpoint(last)
    assert state["step"] == 4
    assert all(torch.isfinite(v.float()).all() for v in state["discriminator"].values())


def test_d_loss_alarm_is_logged(tiny_dataset, tmp_path):
    messages = []

    class Recorder:
        def start(self, total, initial): pass
        def advance(self, step): pass
        def log(self, step, row): pass
        def message(self, text): messages.append(text)
        def close(self): pass

    # A threshold no loss stays under... except with an absurdly high one.
    config = tiny_config(tiny_dataset, tmp_path / "run", steps=4, log_every=1, collapse_d_loss=100.0, collapse_windows=2)
    train(config, reporter=Recorder())
    assert any("ALARM discriminator loss below" in m for m in messages)
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert '"kind": "d_loss_zero"' in events
