"""DistributedDataParallel with the gloo backend: 2 processes on the CPU,
started the way users start them (torchrun -m gantrain train ...)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from gantrain.checkpoint import load_checkpoint
from gantrain.train import resume_config, train


def test_two_processes_with_gloo_then_resume_on_one(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "gantrain", "train", str(tiny_dataset), "-o", str(run), "--steps", "3", "--batch-size", "8",
        "--ngf", "4", "--ndf", "4", "--nz", "8", "--conditional", "--ema", "--log-every", "1",
        "--eval-every", "0", "--device", "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Only rank 0 talks.
    assert proc.stdout.count("done: step 3") == 1, proc.stdout

    resolved = json.loads((run / "config.json").read_text())
    assert resolved["runtime"]["world_size"] == 2
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 3 and state["ema"] is not None
    ranks = state["rng"]["ranks"]
    assert len(ranks) == 2
    # Each rank draws its own batches.
    assert not torch.equal(ranks[0]["data"]["gen"], ranks[1]["data"]["gen"])

    # The result resumes on any number of processes (here: one).
    torch.set_num_threads(1)
    result = train(resume_config(run, {"steps": 5}), resume=True)
    assert result.step == 5
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 5
