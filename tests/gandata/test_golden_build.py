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

# Recorded with the code before the restructuring (commit daa97c3).
SHARDS = {
    "plain": [
        "31744634792276823c9c1ba7c4672f0e734f9bb6edd64d7a2f6ec3e7d2929cec",
        "1f1c645aaf91336e8a7e62c0c16f360cf6d217a3ad95efc9fe83f6826a55568a",
        "8e08ae9532f97332a91f2b4c7ba251813702b695fa53d85b38b70dc19d94d3d1",
    ],
    "balanced": [
        "aa92857fca3f15edd481029ba922adfcba832b4abd00050dc2c4e6b1e5dd01ee",
        "1414b76da3aed1af7d33b20bf5533f9c0891cf707e0abef6549823faf5a67419",
        "3b04aed39c93231f7b420a8a2d70ab95b8376e876eecca1f5e342b27232a52c6",
        "5a56490e39cb45c7a6c9007371377c845f6930c487f843bafda4971fd6f4d73e",
        "ff3aa4d94da11377ad8ea1275c31501817e6e09a6338a954747a00cd568125d4",
    ],
}
MANIFESTS = {"plain": "135918d5263ba08b3f3ad3281f5f532debc3e5f878062d52e4861ead6481b184", "balanced": "4816248989629d9b668d667a5d5a8a805d77f8894532ec402701e7cc67beed79"}
SAMPLES = {"plain": "db7be220343e633b841db44768f291d6a8529c95b8496f6babef7296eb6bb260", "balanced": "f59d02f0312c3135f528b710cdb39f183eb61056877de6654b9b47dd25135c05"}


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
