"""GPU paths: bf16 autocast, fp16 with loss scaling, channels_last, fused Adam,
torch.compile, the pinned-memory streaming path and exact resume on CUDA.
Marked ``gpu`` (not in the default run); skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from gantrain.checkpoint import load_checkpoint
from gantrain.train import resolve, resume_config, train

from .conftest import tiny_config
from .test_checkpoint import _assert_same_state

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_defaults_on_cuda(tiny_dataset, tmp_path):
    run = resolve(tiny_config(tiny_dataset, tmp_path / "run", device="auto"))
    assert run.runtime.device.type == "cuda"
    assert run.runtime.channels_last and run.runtime.fused_adam
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    assert run.runtime.precision == expected


@pytest.mark.parametrize(
    "options",
    [{}, {"precision": "fp16"}, {"precision": "fp32", "channels_last": False}, {"placement": "stream"},
     {"compile": True}, {"conditional": True, "ema": True, "diffaugment": ("color", "translation", "cutout")}],
    ids=["bf16", "fp16", "fp32", "stream", "compile", "conditional"],
)
def test_a_few_steps_on_cuda(tiny_dataset, tmp_path, options):
    config = tiny_config(tiny_dataset, tmp_path / "run", device="cuda", **options)
    result = train(config)
    state = load_checkpoint(result.last_checkpoint)
    assert all(torch.isfinite(v.float()).all() for v in state["generator"].values())
    if options.get("precision") == "fp16":
        assert state["scaler_g"] and state["scaler_d"]


def test_exact_resume_on_cuda(tiny_dataset, tmp_path):
    options = dict(device="cuda", deterministic=True, conditional=True, ema=True, flip=True)
    train(tiny_config(tiny_dataset, tmp_path / "a", steps=6, **options))
    train(tiny_config(tiny_dataset, tmp_path / "b", steps=3, **options))
    train(resume_config(tmp_path / "b", {"steps": 6}), resume=True)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    for key in ("generator", "discriminator", "ema", "opt_g", "opt_d"):
        _assert_same_state(a[key], b[key], key)
