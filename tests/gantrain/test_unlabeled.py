"""A dataset whose folder had a few files outside the class folders holds
unlabeled samples (label -1): conditional training and its evaluation skip
them and say how many; unconditional training uses them (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.numpy import load_file, save_file

from gantrain.data import load_batches, read_dataset_info
from gantrain.train import train

from .conftest import tiny_config, write_dataset


class Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, total: int, step: int) -> None:
        pass

    def advance(self, step: int) -> None:
        pass

    def log(self, step: int, row: dict) -> None:
        pass

    def message(self, text: str) -> None:
        self.lines.append(text)

    def close(self) -> None:
        pass


# Every 10th sample of each shard (64 + 32 samples): 7 + 4.
UNLABELED = 11


@pytest.fixture(scope="module")
def partly_labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_dataset(tmp_path_factory.mktemp("partly") / "ds", n=96, pattern="colour")
    for shard in sorted((root / "shards").iterdir()):
        tensors = load_file(str(shard))
        tensors["labels"][::10] = -1  # as a folder's root files are
        save_file(tensors, str(shard))
    return root


def test_conditional_training_skips_unlabeled_samples_and_says_how_many(partly_labelled: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    messages = Messages()
    result = train(tiny_config(partly_labelled, tmp_path / "run", conditional=True, steps=2), reporter=messages)
    assert result is not None
    assert any(f"{UNLABELED} unlabeled samples" in line for line in messages.lines), messages.lines


def test_conditional_evaluation_skips_unlabeled_samples(partly_labelled: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    train(tiny_config(partly_labelled, tmp_path / "run", conditional=True, steps=2, eval_every=2, eval_samples=32,
                      classifier_steps=5))


def test_unconditional_batches_use_every_sample(partly_labelled: Path) -> None:
    info = read_dataset_info(partly_labelled, None)
    every = load_batches(info, torch.device("cpu"), 8)
    labelled = load_batches(info, torch.device("cpu"), 8, labelled_only=True)
    assert every.images.shape[0] == 96 and labelled.images.shape[0] == 96 - UNLABELED
    assert (labelled.labels >= 0).all() and (every.labels < 0).sum() == UNLABELED
