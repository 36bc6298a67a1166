"""Fixed small builds compared with recorded hashes: the same inputs, config
and seed must keep giving the same shards, samples.parquet rows and manifest.
A change here is a change of the output format or of what a build decides,
and needs a FORMAT_VERSION thought, not a new hash pasted in.

The hashes pin what gandata computes, not what another library draws: the
balanced case writes exact copies (augmented copies' pixels come from
albumentations through OpenCV, and OpenCV 4.14 and 5.0 draw different ones),
and a separate test checks that augmenting changes nothing but the copies'
pixels."""

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
from tests.common.digests import samples_digest

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
        balance=BalanceConfig(mode="oversample", val_fraction=0.2, augment=False),
        out=OutputConfig(shard_size=64, dtype="float16", normalize="standardize"), seed=3, workers=1,
    ),
}

# "plain" was recorded with the code before the restructuring (commit daa97c3),
# and again when shards became even-sized (SHARD_LAYOUT 2: the same samples in
# the same order, cut 40/40/40 instead of 50/50/20; checked against the old
# code's concatenated tensors). "balanced" wrote augmented copies until CI
# moved from an Intel AVX-512 machine to an AMD one: its hashes were those of
# Intel's BLAS kernel, whose sums gave one synth:shapes image other pixels
# (its rows and every shard differed; the old code gives the old hashes with
# OPENBLAS_CORETYPE=SkylakeX). Products are summed in a fixed order since
# (util/ordered_product, tests/gandata/test_cpu_independence.py), and
# "balanced" writes exact copies, recorded by the code of 9ce3124 (the same
# bits as the fixed order gives). The manifests were re-recorded when
# STAGING_VERSION 5 and synth:shapes GENERATOR_VERSION 2 changed the build
# fingerprint, and nothing else in them.
SHARDS = {
    "plain": [
        "4a01b509cfbeb5d78cfcd56ea025b0c4d6a8c724c8caa2c632f00169030cfd72",
        "3f9e16ed9e9fb6fe100420813956a4087cf0db5f697806830db8a59c21dfce27",
        "fe8de8d3bf9c9b8c9f3c96b8a67dab3e5cd420fb70dda8bd1da43e7e3b6cb947",
    ],
    "balanced": [
        "f7e7ea8ae8f99b2e4b91372e9269c33724d5a410add68a90d691a7380dceeabf",
        "c8fc1fedf79f1a0388093a7cd5981a35a8c2ffda0fc604462390a0e329bbe230",
        "1b5adb02c31e9e10288196a4eb457552208e7bc9dd189d86d2c45042bc81067f",
        "2280025370ee0d6e82577fdaa8278ef45afe6610da239f92c33c82b71f32ee38",
        "7eac8ee9fae4c55246ff207b67b07de47070732feaf27cd50c137948b5522b27",
    ],
}
MANIFESTS = {"plain": "596e885d6dc9ebc9e9d8d7ebc2f0f5360350c68b525fa17c9c5bc84a7fb812f4", "balanced": "d4981ee7cf73e23dc40586055016f2472e2046e1c6171f265fd613513ead81b6"}
SAMPLES = {"plain": "3b43df74681d81764a0b69d1a240d1c3b516b62efdae1d6cccb0c7c74fd10735", "balanced": "ae1eb957329eb5751c02dd28136c1e751e7a8b353127139a3113f3b89082986d"}


def manifest_digest(out: Path) -> str:
    """The manifest's hash without the fields that record the tool version
    or where the dataset was written."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("created_by", None)
    manifest["config"].pop("output", None)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_matches_recorded_hashes(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    build(dataclasses.replace(CASES[name], output=str(out)))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [s["sha256"] for s in manifest["shards"]] == SHARDS[name]
    assert manifest_digest(out) == MANIFESTS[name]
    assert samples_digest(out) == SAMPLES[name]


# The augmentation column of the balanced case built with augment=True.
AUGMENTATION_SEEDS = "d059a9c3da03324924921cea08b119189fd05f24037017a406a8f6a48396849a"


def test_augmenting_copies_changes_only_their_pixels(tmp_path: Path) -> None:
    exact = CASES["balanced"]
    augmented = dataclasses.replace(exact, balance=dataclasses.replace(exact.balance, augment=True))
    outs = {}
    for name, config in (("exact", exact), ("augmented", augmented)):
        outs[name] = tmp_path / name
        build(dataclasses.replace(config, output=str(outs[name])))
    rows = {name: pq.read_table(out / "samples.parquet").to_pylist() for name, out in outs.items()}
    copies = 0
    for plain, drawn in zip(rows["exact"], rows["augmented"], strict=True):
        if plain["derived_from"] is None:
            assert drawn == plain
            continue
        copies += 1
        assert plain["augmentation"] is None and drawn["augmentation"].startswith("hflip,affine,color@seed=")
        # content_hash is the original's (what was read), not the pixels'.
        assert {k for k in plain if plain[k] != drawn[k]} == {"augmentation"}
    assert copies > 0
    # Which copies and with which seeds is gandata's decision, and pinned here.
    seeds = [r["augmentation"] for r in rows["augmented"] if r["augmentation"]]
    assert hashlib.sha256("\n".join(seeds).encode()).hexdigest() == AUGMENTATION_SEEDS
    manifests = {name: json.loads((out / "manifest.json").read_text(encoding="utf-8")) for name, out in outs.items()}
    for manifest in manifests.values():
        for shard in manifest["shards"]:
            shard.pop("sha256")
        manifest["config"].pop("output")
        manifest["config"]["balance"].pop("augment")
        manifest.pop("build_fingerprint")
    assert "albumentations" in manifests["augmented"].pop("augmented_by")
    assert manifests["augmented"] == manifests["exact"]
    # The copies' pixels did change: every train shard holds some.
    digests = {name: [s["sha256"] for s in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["shards"]] for name, out in outs.items()}
    train = [i for i, s in enumerate(manifests["exact"]["shards"]) if s["split"] == "train"]
    assert train and all(digests["exact"][i] != digests["augmented"][i] for i in train)

