"""Random access to a built dataset: memory-mapped shards, a small handle
cache, and DataLoader workers that open their own handles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from gandata.config import BuildConfig, ImageConfig, OutputConfig, SourceSpec
from gandata.dataset import reader
from gandata.dataset.reader import map_safetensors, open_dataset
from gandata.errors import FormatError
from gandata.pipeline import build


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ra") / "out"
    build(BuildConfig(sources=(SourceSpec("synth:shapes?count=300&size=16&seed=1"),), output=str(out),
                      image=ImageConfig(size_px=16), out=OutputConfig(shard_size=32), workers=1, executor="serial"))
    return out


def _whole(ds) -> tuple[np.ndarray, np.ndarray]:
    arrays = ds.load_all()
    return arrays.images, arrays.labels


def test_random_access_reads_the_same_samples_as_whole_shards(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAPPED_SHARDS", 3)  # force evictions
    ds = open_dataset(dataset)
    images, labels = _whole(ds)
    assert len(ds.shards) > 3
    for i in np.random.default_rng(0).permutation(len(ds)).tolist() + [-1]:
        image, label = ds[i]
        assert image.dtype == np.uint8 and image.flags.writeable
        assert np.array_equal(image, images[i]) and label == labels[i]
    assert len(ds._mapped) <= 3


def test_a_pickled_dataset_carries_no_open_maps(dataset: Path) -> None:
    ds = open_dataset(dataset)
    ds[0], ds[len(ds) - 1]
    copy = pickle.loads(pickle.dumps(ds))
    assert len(copy._mapped) == 0
    assert np.array_equal(copy[5][0], ds[5][0])


def test_dataloader_workers_read_every_sample_once(dataset: Path) -> None:
    torch = pytest.importorskip("torch")
    from gandata.torch import TorchDataset

    tds = TorchDataset(dataset, normalize=False)
    images, labels = _whole(tds.ds)
    loader = torch.utils.data.DataLoader(tds, batch_size=16, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    seen_images, seen_labels = [], []
    for batch_images, batch_labels in loader:
        seen_images.append(batch_images.numpy())
        seen_labels.append(batch_labels.numpy())
    got_images, got_labels = np.concatenate(seen_images), np.concatenate(seen_labels)
    # Shuffled: match the samples as a multiset (by their bytes and label).
    key = lambda im, lab: (im.tobytes(), int(lab))  # noqa: E731
    assert sorted(map(key, got_images, got_labels)) == sorted(map(key, images, labels))


def test_a_truncated_shard_is_a_format_error(dataset: Path, tmp_path: Path) -> None:
    shard = sorted((dataset / "shards").glob("*.safetensors"))[0]
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(FormatError, match="cannot read shard"):
        map_safetensors(broken)
    broken.write_bytes(b"\xff" * 16)
    with pytest.raises(FormatError, match="cannot read shard"):
        map_safetensors(broken)
