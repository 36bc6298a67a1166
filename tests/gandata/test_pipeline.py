"""End-to-end builds through the real pipeline."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from safetensors.numpy import load_file

from gandata import open_dataset
from gandata.config import BuildConfig, ImageConfig, OutputConfig, SourceSpec
from gandata.dataset.verify import verify_dataset
from gandata.errors import ConfigError, SourceError
from gandata.pipeline import build
from gandata.write.shards import gather_pixels


def _config(src: str | list[str], dest: Path, **kw) -> BuildConfig:
    sources = (src,) if isinstance(src, str) else tuple(src)
    image = kw.pop("image", ImageConfig(size_px=32))
    return BuildConfig(sources=tuple(SourceSpec(s) for s in sources), output=str(dest), image=image, **kw)


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "shards").iterdir())}


def test_synth_build_is_valid_and_loads_with_plain_safetensors(shapes_dataset: Path) -> None:
    manifest = json.loads((shapes_dataset / "manifest.json").read_text())
    assert manifest["format"] == "gandata" and manifest["version"] == 1
    assert manifest["num_samples"] == 300
    assert manifest["image_shape"] == [3, 32, 32]
    assert manifest["classes"] == ["circle", "square", "triangle", "star", "cross"]
    assert sum(manifest["class_counts"].values()) == 300
    total = 0
    for entry in manifest["shards"]:
        tensors = load_file(str(shapes_dataset / entry["path"]))
        assert tensors["images"].dtype == np.uint8
        assert tensors["images"].shape == (entry["num_samples"], 3, 32, 32)
        assert tensors["labels"].dtype == np.int64
        total += entry["num_samples"]
    assert total == 300
    assert verify_dataset(shapes_dataset).ok
    assert not (shapes_dataset / ".staging").exists()
    assert len(manifest["mean"]) == 3 and all(0 < m < 1 for m in manifest["mean"])


def test_samples_index_maps_every_sample_to_its_shard_row_and_source(shapes_dataset: Path) -> None:
    table = pq.read_table(shapes_dataset / "samples.parquet").to_pylist()
    assert len(table) == 300
    assert len({r["key"] for r in table}) == 300
    ds = open_dataset(shapes_dataset)
    manifest = ds.manifest
    offsets = np.cumsum([0] + [s["num_samples"] for s in manifest["shards"]])
    for rec in table[:50]:
        image, label = ds[int(offsets[rec["shard"]] + rec["row"])]
        assert label == rec["label"]
        assert manifest["classes"][label] == rec["class_name"]
        assert rec["source"] == "synth:shapes?count=300"
        assert rec["derived_from"] is None


def test_flipping_one_byte_makes_verify_fail(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(_config("synth:shapes?count=60", out, workers=1))
    shard = sorted((out / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    report = verify_dataset(out)
    assert not report.ok
    assert shard.name in report.problems[0]


def test_same_seed_gives_identical_shards_whatever_the_worker_count(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    build(_config("synth:shapes?count=1100", a, workers=1, out=OutputConfig(shard_size=300)))
    build(_config("synth:shapes?count=1100", b, workers=2, out=OutputConfig(shard_size=300)))
    assert _shard_bytes(a) == _shard_bytes(b)
    assert (a / "samples.parquet").read_bytes() == (b / "samples.parquet").read_bytes()


def test_other_seed_gives_other_shards(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    build(_config("synth:shapes?count=50", a, workers=1))
    build(_config("synth:shapes?count=50", b, workers=1, seed=1))
    assert _shard_bytes(a) != _shard_bytes(b)
    assert json.loads((b / "manifest.json").read_text())["seed"] == 1


def test_rebuild_same_config_is_a_no_op_and_other_config_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(_config("synth:shapes?count=40", out, workers=1))
    before = _shard_bytes(out)
    assert build(_config("synth:shapes?count=40", out, workers=1)).up_to_date
    with pytest.raises(ConfigError, match="--overwrite"):
        build(_config("synth:shapes?count=41", out, workers=1))
    assert _shard_bytes(out) == before and verify_dataset(out).ok
    summary = build(_config("synth:shapes?count=41", out, workers=1, overwrite=True))
    assert summary.num_samples == 41 and verify_dataset(out).ok


def test_refuses_to_build_into_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not empty"):
        build(_config("synth:shapes?count=10", out, workers=1))
    assert (out / "thesis.tex").read_text() == "precious"


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no-such-folder"):
        build(_config(str(tmp_path / "no-such-folder"), tmp_path / "out", workers=1))


@pytest.mark.parametrize("mode", ["minus1-1", "zero-1", "center", "standardize"])
@pytest.mark.parametrize("dtype", ["uint8", "float16"])
def test_normalization_modes_and_dtypes(tmp_path: Path, mode: str, dtype: str) -> None:
    out = tmp_path / "ds"
    build(_config("synth:shapes?count=40", out, workers=1, out=OutputConfig(normalize=mode, dtype=dtype)))
    ds = open_dataset(out)
    arrays = ds.load_all()
    assert str(arrays.images.dtype) == dtype
    values = ds.normalize(arrays.images)
    manifest = ds.manifest
    if mode == "minus1-1":
        assert values.min() >= -1.0001 and values.max() <= 1.0001
    if mode == "zero-1":
        assert values.min() >= 0 and values.max() <= 1.0001
    if mode in ("center", "standardize"):
        assert np.allclose(values.mean(axis=(0, 2, 3)), 0, atol=2e-2)
    if mode == "standardize":
        assert np.allclose(values.std(axis=(0, 2, 3)), 1, atol=3e-2)
    assert np.allclose(np.asarray(manifest["mean"]), 0.5 * 0 + np.asarray(manifest["mean"]))
    # Whatever the storage, the denormalized pixels are the same uint8 image.
    pixels = ds.to_uint8(arrays.images)
    reference = tmp_path / "ref"
    build(_config("synth:shapes?count=40", reference, workers=1))
    assert np.abs(pixels.astype(int) - open_dataset(reference).load_all().images.astype(int)).max() <= 1


def test_channels_1_and_resize_modes(tmp_path: Path) -> None:
    for resize in ("crop", "pad", "stretch"):
        out = tmp_path / resize
        build(_config("synth:shapes?count=10&size=48", out, workers=1, image=ImageConfig(size_px=24, channels=1, resize=resize)))
        ds = open_dataset(out)
        assert ds.image_shape == (1, 24, 24)
        assert ds[0][0].shape == (1, 24, 24)


def test_resume_after_kill_reuses_partitions_and_matches_uninterrupted(tmp_path: Path) -> None:
    """A real subprocess is killed mid-build; re-running finishes it."""
    uri = "synth:shapes?count=5000"
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cmd = [sys.executable, "-m", "gandata.cli", "build", uri, "--size", "32", "--workers", "1", "--quiet", "--shard-size", "1000"]
    proc = subprocess.Popen(cmd + ["-o", str(killed)])
    deadline = time.time() + 60
    staged: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        staged = list((killed / ".staging").glob("ingest-*/part-*"))
        if len(staged) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "manifest.json").exists()
    finished_before = len(list((killed / ".staging").glob("ingest-*/part-*")))
    assert finished_before >= 2
    summary = build(_config(uri, killed, workers=1, out=OutputConfig(shard_size=1000)))
    assert summary.reused_partitions >= finished_before
    build(_config(uri, clean, workers=2, out=OutputConfig(shard_size=1000)))
    assert _shard_bytes(killed) == _shard_bytes(clean)
    assert verify_dataset(killed).ok


@pytest.mark.parametrize("channels_first", [False, True])
def test_gather_pixels_in_order_and_shuffled(tmp_path: Path, channels_first: bool) -> None:
    rng = np.random.default_rng(0)
    stacks = [rng.integers(0, 256, (n, 4, 5, 3), dtype=np.uint8) for n in (6, 3)]
    part_dirs = []
    for i, stack in enumerate(stacks):
        part = tmp_path / f"p{i}"
        part.mkdir()
        np.save(part / "images.npy", stack)
        part_dirs.append(str(part))
    everything = np.concatenate(stacks)
    parts = np.array([0] * 6 + [1] * 3)
    rows = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2])
    for order in (np.arange(9), rng.permutation(9), np.array([2, 3, 4, 8, 7])):
        got = gather_pixels(tuple(part_dirs), parts[order], rows[order], channels_first=channels_first)
        want = everything[order]
        assert np.array_equal(got, want.transpose(0, 3, 1, 2) if channels_first else want)


def test_the_samples_index_is_the_same_written_in_many_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # samples.parquet is written in row groups of CHUNK_ROWS samples (parsed
    # provenance for millions of samples would not fit in memory); its
    # columns, types and rows must not depend on that. Two sources give rows
    # with different provenance keys, oversampling gives derived rows.
    from gandata.config import BalanceConfig
    from gandata.write import samples_index

    folder = tmp_path / "src"
    rng = np.random.default_rng(3)
    for i in range(12):
        (folder / "dot").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / "dot" / f"{i}.png")
    sources = [str(folder), "synth:shapes?count=60&size=24&imbalance=3"]
    kw = dict(image=ImageConfig(size_px=16), workers=1, balance=BalanceConfig(mode="oversample"))
    build(_config(sources, tmp_path / "one", **kw))
    monkeypatch.setattr(samples_index, "CHUNK_ROWS", 7)
    build(_config(sources, tmp_path / "many", **kw))
    one, many = pq.ParquetFile(tmp_path / "one" / "samples.parquet"), pq.ParquetFile(tmp_path / "many" / "samples.parquet")
    assert one.metadata.num_row_groups == 1 and many.metadata.num_row_groups > 10
    assert one.schema_arrow == many.schema_arrow
    assert one.read().to_pylist() == many.read().to_pylist()
