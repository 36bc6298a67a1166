"""Fixed small builds compared with hashes recorded before the package was
restructured (issue 14): the same inputs, config and seed must keep giving the
same shards, samples.parquet rows and manifest. A change here is a change of
the output format or of what a build decides, and needs a FORMAT_VERSION
thought, not a new hash pasted in."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gandata.config import (
    BalanceConfig,
    BuildConfig,
    ImageConfig,
    OutputConfig,
    SourceSpec,
)
from gandata.pipeline import build

# The default --max-pixels was 90,000,000 when these hashes were recorded (the
# config is part of the manifest); the same config must give the same bytes.
OLD_MAX_PIXELS = 90_000_000

CASES = {
    "plain": BuildConfig(
        sources=(SourceSpec("synth:shapes?count=120&size=24"),), image=ImageConfig(size_px=16, max_pixels=OLD_MAX_PIXELS),
        out=OutputConfig(shard_size=50), workers=1,
    ),
    "balanced": BuildConfig(
        sources=(SourceSpec("synth:shapes?count=150&imbalance=4&size=24"),), image=ImageConfig(size_px=16, max_pixels=OLD_MAX_PIXELS),
        balance=BalanceConfig(mode="oversample", val_fraction=0.2),
        out=OutputConfig(shard_size=64, dtype="float16", normalize="standardize"), seed=3, workers=1,
    ),
}

# Recorded with the code before the restructuring (commit daa97c3), and again
# when shards became even-sized (SHARD_LAYOUT 2: the same samples in the same
# order, cut 40/40/40 instead of 50/50/20 and 53/53/52/52 instead of
# 64/64/64/18; checked against the old code's concatenated tensors).
SHARDS = {
    "plain": [
        "4a01b509cfbeb5d78cfcd56ea025b0c4d6a8c724c8caa2c632f00169030cfd72",
        "3f9e16ed9e9fb6fe100420813956a4087cf0db5f697806830db8a59c21dfce27",
        "fe8de8d3bf9c9b8c9f3c96b8a67dab3e5cd420fb70dda8bd1da43e7e3b6cb947",
    ],
    "balanced": [
        "bd0b7c573f5b34f24c5914e8f9f3a662fc83363e908f73bb14e9c354da048b28",
        "3209ec680c95352bc8227efe9a944403f9211bd189dfc4ea4a435c13cdf4d2da",
        "c5309ba585de375c6d2b940c3ecb37d90490f9679cba1ddebaf1e80d2970615a",
        "f2ef95c1df3c91061069f7e19279932bb3c7aa1c3befa11de541804d8d0cbbaa",
        "ff3aa4d94da11377ad8ea1275c31501817e6e09a6338a954747a00cd568125d4",
    ],
}
MANIFESTS = {"plain": "893f4378986241a9a76adf39ec7a6a28ef308a921167ff52c0b8b4917336fe67", "balanced": "bc095eb0b2dc0c2bcd17f78977062a4c471b150285e44584f1fda3d11ddd10b3"}
SAMPLES = {"plain": "3b43df74681d81764a0b69d1a240d1c3b516b62efdae1d6cccb0c7c74fd10735", "balanced": "d1832196339d7961474ba3bb2479000cc23b58872dfbbfc5ea5aac5db5721eaa"}


def manifest_digest(out: Path) -> str:
    """The manifest's hash without the fields that record the tool version
    or where the dataset was written."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("created_by", None)
    manifest["config"].pop("output", None)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def samples_digest(out: Path) -> str:
    """The hash of samples.parquet's rows (not its bytes, which also record the
    pyarrow version that wrote them)."""
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_matches_recorded_hashes(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    build(dataclasses.replace(CASES[name], output=str(out)))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [s["sha256"] for s in manifest["shards"]] == SHARDS[name]
    assert manifest_digest(out) == MANIFESTS[name]
    assert samples_digest(out) == SAMPLES[name]
