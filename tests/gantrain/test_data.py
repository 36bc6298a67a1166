from __future__ import annotations

import numpy as np
import pytest
import torch

from gantrain.data import (
    choose_placement,
    load_batches,
    load_real_uint8,
    read_dataset_info,
)
from gantrain.errors import DataError

from .conftest import write_dataset


def test_info_from_the_manifest(tiny_dataset):
    info = read_dataset_info(tiny_dataset, "train")
    assert info.num_samples == 96
    assert info.image_shape == (3, 32, 32)
    assert info.classes == ("a", "b", "c")
    assert info.offset == (0.5, 0.5, 0.5) and info.scale == (0.5, 0.5, 0.5)
    assert len(info.manifest_sha256) == 64
    assert not info.has_weights
    assert info.nbytes == 96 * 3 * 32 * 32


def test_missing_dataset_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="DATA"):
        read_dataset_info(tmp_path / "nope", "train")


@pytest.mark.parametrize("placement", ["device", "stream"])
def test_batches_are_normalized_per_manifest(tiny_dataset, placement):
    info = read_dataset_info(tiny_dataset, "train")
    batches = load_batches(info, torch.device("cpu"), 16, placement=placement, seed=0)
    assert batches.placement == placement
    x, y = batches.next()
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.shape == (16,)
    assert x.min() >= -1.0 and x.max() <= 1.0
    # uint8 230 -> 230/255*2-1
    assert torch.isclose(x.max(), torch.tensor(230 / 255 * 2 - 1))


def test_zero_one_and_float_storage(tmp_path):
    u8 = write_dataset(tmp_path / "u8", n=32, mode="zero-1")
    f16 = write_dataset(tmp_path / "f16", n=32, mode="zero-1", dtype="float16")
    for path in (u8, f16):
        info = read_dataset_info(path, "train")
        x = load_batches(info, torch.device("cpu"), 32, seed=0).peek(32)
        assert 0.0 <= x.min() and x.max() <= 1.0
    a = load_batches(read_dataset_info(u8, "train"), torch.device("cpu"), 32).peek(32)
    b = load_batches(read_dataset_info(f16, "train"), torch.device("cpu"), 32).peek(32)
    assert torch.allclose(a, b, atol=1e-3)
    pixels, _, _ = load_real_uint8(f16, "train")
    assert pixels.dtype == torch.uint8 and pixels.max() == 230


def test_flip_flips_some_images(tiny_dataset):
    info = read_dataset_info(tiny_dataset, "train")
    plain = load_batches(info, torch.device("cpu"), 64, seed=3)
    flipped = load_batches(info, torch.device("cpu"), 64, seed=3, flip=True)
    a, _ = plain.next()
    b, _ = flipped.next()
    same = [(torch.equal(a[i], b[i])) for i in range(64)]
    mirrored = [(torch.equal(a[i].flip(2), b[i])) for i in range(64)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 10 < sum(mirrored) < 54


def test_weights_are_honoured(tmp_path):
    weights = np.zeros(60, dtype=np.float32)
    weights[np.arange(60) % 3 == 2] = 1.0  # only class "c" may be drawn
    path = write_dataset(tmp_path / "w", n=60, weights=weights)
    info = read_dataset_info(path, "train")
    assert info.has_weights
    _, y = load_batches(info, torch.device("cpu"), 256, seed=0).next()
    assert set(y.tolist()) == {2}
    _, y = load_batches(info, torch.device("cpu"), 256, seed=0, use_weights=False).next()
    assert set(y.tolist()) == {0, 1, 2}


@pytest.mark.parametrize("placement", ["device", "stream"])
def test_state_dict_replays_the_stream(tiny_dataset, placement):
    info = read_dataset_info(tiny_dataset, "train")
    batches = load_batches(info, torch.device("cpu"), 8, placement=placement, seed=5, flip=True)
    batches.next()
    state = {k: v.clone() for k, v in batches.state_dict().items()}
    expected = [batches.next()[0] for _ in range(3)]
    other = load_batches(info, torch.device("cpu"), 8, placement=placement, seed=99, flip=True)
    other.load_state_dict(state)
    for want in expected:
        assert torch.equal(other.next()[0], want)


def test_placement_auto_is_device_on_cpu(tiny_dataset):
    info = read_dataset_info(tiny_dataset, "train")
    assert choose_placement(info, torch.device("cpu"), "auto") == "device"
    assert choose_placement(info, torch.device("cpu"), "stream") == "stream"
