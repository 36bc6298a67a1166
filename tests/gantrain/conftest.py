"""Fixtures for gantrain's tests: tiny datasets written in the gandata format
by hand (so the format, not only the pipeline, is what gantrain is tested
against), and tiny training configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a loaded shared
    machine OpenMP threads spinning against each other cost 10x."""
    before = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    # --deterministic runs switch a process-wide flag; do not leak it.
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic)


def write_dataset(
    root: Path, n: int = 96, size: int = 32, channels: int = 3, classes: tuple[str, ...] = ("a", "b", "c"),
    dtype: str = "uint8", weights: np.ndarray | None = None, val: int = 0, mode: str = "minus1-1", seed: int = 0,
    shard_size: int = 64, pattern: str = "block",
) -> Path:
    """Write a gandata dataset: class k is a bright square in the k-th region on
    noise (``pattern="block"``) or the k-th of a few distinct colours plus noise
    (``pattern="colour"``, easy enough for a GAN to learn in a few hundred steps).

    ``val`` extra images go to a val split; ``weights`` (float32 [n]) are
    written into the train shards; float dtypes store normalized values.
    """
    rng = np.random.default_rng(seed)
    total = n + val
    labels = np.arange(total) % max(len(classes), 1) if classes else np.full(total, -1)
    images = rng.integers(0, 60, size=(total, channels, size, size), dtype=np.uint8)
    cell = size // 4
    palette = np.array([[230, 30, 30], [30, 200, 30], [40, 40, 230], [230, 220, 40], [200, 40, 220], [40, 210, 220]])
    for i, label in enumerate(labels):
        k = max(int(label), 0) if classes else int(rng.integers(0, 3))
        if pattern == "colour":
            colour = palette[k % len(palette), :channels].reshape(-1, 1, 1)
            images[i] = np.clip(colour + images[i].astype(np.int64) - 30, 0, 255).astype(np.uint8)
            continue
        y0, x0 = cell * (k % 3), cell * (k // 3 + 1)
        images[i, :, y0 : y0 + 2 * cell, x0 : x0 + cell] = 230
    offset = [0.5] * channels if mode == "minus1-1" else [0.0] * channels
    scale = [0.5] * channels if mode == "minus1-1" else [1.0] * channels
    root.mkdir(parents=True, exist_ok=True)
    (root / "shards").mkdir(exist_ok=True)
    shards = []
    splits = [("train", 0, n), ("val", n, total)] if val else [("train", 0, n)]
    index = 0
    for split, lo, hi in splits:
        for start in range(lo, hi, shard_size):
            stop = min(start + shard_size, hi)
            imgs = images[start:stop]
            if dtype != "uint8":
                o = np.asarray(offset, np.float32).reshape(1, -1, 1, 1)
                s = np.asarray(scale, np.float32).reshape(1, -1, 1, 1)
                imgs = ((imgs.astype(np.float32) / 255 - o) / s).astype(dtype)
            tensors = {"images": np.ascontiguousarray(imgs), "labels": labels[start:stop].astype(np.int64)}
            if weights is not None and split == "train":
                tensors["weights"] = weights[start:stop].astype(np.float32)
            rel = f"shards/shard-{index:05d}.safetensors"
            save_file(tensors, str(root / rel))
            counts = {c: int((labels[start:stop] == k).sum()) for k, c in enumerate(classes)}
            shards.append({"path": rel, "num_samples": stop - start, "sha256": "0" * 64, "class_counts": counts, "split": split})
            index += 1
    manifest: dict[str, Any] = {
        "format": "gandata", "version": 1, "num_samples": total, "image_shape": [channels, size, size],
        "dtype": dtype, "normalization": {"mode": mode, "offset": offset, "scale": scale},
        "classes": list(classes), "class_counts": {c: int((labels == k).sum()) for k, c in enumerate(classes)},
        "shards": shards, "seed": seed, "config": {}, "mean": [0.3] * channels, "std": [0.3] * channels,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 labeled 32 px RGB images in 3 classes (two shards)."""
    return write_dataset(tmp_path_factory.mktemp("tiny") / "ds")


def tiny_config(data: Path, run_dir: Path, **overrides: Any):
    """A TrainConfig small enough to run a few steps in about a second."""
    from gantrain.config import TrainConfig

    values: dict[str, Any] = dict(
        data=str(data), run_dir=str(run_dir), steps=4, batch_size=8, ngf=4, ndf=4, nz=8, log_every=2,
        sample_every=1000, checkpoint_every=1000, eval_every=0, device="cpu", seed=0,
    )
    values.update(overrides)
    return TrainConfig(**values)
