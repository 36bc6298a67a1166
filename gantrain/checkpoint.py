"""Checkpoints: everything a run needs to continue exactly, written atomically.

A checkpoint is a ``torch.save`` file holding only tensors and plain Python
values, so it is read back with ``torch.load(weights_only=True)``: opening a
checkpoint never executes code from it. Keys:

    format, version    "gantrain-checkpoint", 1
    step               optimisation steps completed
    config, model      TrainConfig and ModelConfig as dicts
    dataset            the dataset's path, manifest hash, shape, classes
    generator, discriminator, ema           state dicts (ema may be None)
    opt_g, opt_d, scaler_g, scaler_d        optimiser and grad-scaler states
    rng                global RNG states and, per rank, the data and noise
                       generators' states (``world_size`` ranks)
    best               {"metric", "value", "step"} of the best evaluation so far
    monitor            the collapse monitor's state

Files are written under a temporary name in the same directory, flushed to
disk and renamed over the old one: a crash mid-write leaves the previous
checkpoint intact, never a truncated one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from gantrain.errors import RunError

FORMAT = "gantrain-checkpoint"
VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **state}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def copy_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Atomically copy a finished checkpoint (used to keep ``best.pt``)."""
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; raises ``RunError`` with the file's name."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise RunError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RunError(f"{path}: not a gantrain checkpoint")
    if state.get("version") != VERSION:
        raise RunError(f"{path}: checkpoint version {state.get('version')} is not supported (this gantrain reads {VERSION})")
    return state


def find_checkpoint(run: str | Path, which: str = "best") -> Path:
    """The checkpoint file of a run: ``best`` (falls back to ``last``), ``last``,
    or ``run`` itself when it is a file."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise RunError(f"RUN: {run} does not exist")
    folder = checkpoint_dir(run)
    if which not in ("best", "last"):
        raise RunError(f"--checkpoint: {which!r} must be best or last")
    candidates = [folder / BEST, folder / LAST] if which == "best" else [folder / LAST]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RunError(f"RUN: {run} holds no checkpoint yet ({folder / LAST} is missing)")
