"""Balance figures, sampling targets and balanced builds through the real pipeline."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gandata import open_dataset
from gandata.config import BalanceConfig
from gandata.errors import ConfigError
from gandata.pipeline import build
from gandata.plan.balance import class_weights, resolve_targets
from gandata.stats.figures import (
    effective_classes,
    effective_samples,
    gini,
    normalized_entropy,
)
from tests.common.balance_helpers import folder_config, make_folder

COUNTS = {"a": 30, "b": 18, "c": 9, "d": 4}


def test_figures_match_a_hand_computation() -> None:
    counts = [400, 280, 160, 80, 40, 16]
    total = sum(counts)
    h = -sum(c / total * math.log(c / total) for c in counts)
    assert normalized_entropy(counts) == pytest.approx(h / math.log(6))
    assert effective_classes(counts) == pytest.approx(math.exp(h))
    pairs = sum(abs(x - y) for x in counts for y in counts)
    assert gini(counts) == pytest.approx(pairs / (2 * 6 * total))
    assert gini([5, 5, 5]) == 0.0
    assert effective_samples(1, 0.9) == pytest.approx(1.0)
    assert effective_samples(2, 0.9) == pytest.approx(1.9)
    assert effective_samples(100, 0.999) < 100


@pytest.mark.parametrize(
    "mode, strategy, expected",
    [
        ("oversample", "auto", {"a": 30, "b": 30, "c": 30, "d": 30}),
        ("oversample", "minority", {"a": 30, "b": 18, "c": 9, "d": 30}),
        ("oversample", "not minority", {"a": 30, "b": 30, "c": 30, "d": 4}),
        ("oversample", 20, {"a": 30, "b": 20, "c": 20, "d": 20}),
        ("oversample", {"c": 12}, {"a": 30, "b": 18, "c": 12, "d": 4}),
        ("undersample", "auto", {"a": 4, "b": 4, "c": 4, "d": 4}),
        ("undersample", "majority", {"a": 4, "b": 18, "c": 9, "d": 4}),
        ("undersample", "not majority", {"a": 30, "b": 4, "c": 4, "d": 4}),
        ("undersample", "all", {"a": 4, "b": 4, "c": 4, "d": 4}),
        ("undersample", "10", {"a": 10, "b": 10, "c": 9, "d": 4}),
        ("undersample", '{"a": 7}', {"a": 7, "b": 18, "c": 9, "d": 4}),
    ],
)
def test_sampling_strategy_follows_imbalanced_learn(mode: str, strategy, expected: dict[str, int]) -> None:
    assert resolve_targets(COUNTS, mode, strategy) == expected


@pytest.mark.parametrize(
    "mode, strategy, message",
    [("oversample", {"a": 3}, "cannot lower"), ("undersample", {"d": 9}, "cannot raise"),
     ("oversample", {"zebra": 3}, "no class 'zebra'"), ("oversample", "most", "--sampling-strategy"),
     ("oversample", "majority", "changes nothing"), ("undersample", "minority", "changes nothing")],
)
def test_bad_sampling_strategy_names_the_option(mode: str, strategy, message: str) -> None:
    with pytest.raises(ConfigError, match="--sampling-strategy") as info:
        resolve_targets(COUNTS, mode, strategy)
    assert message in str(info.value)


def test_class_weights_equalize_expected_class_frequency() -> None:
    labels = np.array([0] * 30 + [1] * 6 + [2] * 3 + [-1] * 2)
    w = class_weights(labels)
    sums = [w[labels == c].sum() for c in (0, 1, 2)]
    assert sums == pytest.approx([13.0, 13.0, 13.0])
    assert (w[labels == -1] == 1.0).all()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("bal") / "src", COUNTS)


def _table(out: Path) -> list[dict]:
    return pq.read_table(out / "samples.parquet").to_pylist()


def _pixels(out: Path) -> dict[tuple[int, int], np.ndarray]:
    ds = open_dataset(out)
    offsets = np.cumsum([0] + [s["num_samples"] for s in ds.shards])
    return {(k, r): ds[int(offsets[k] + r)][0] for k, s in enumerate(ds.shards) for r in range(s["num_samples"])}


@pytest.mark.parametrize("augment", [True, False])
def test_oversample_brings_every_class_to_the_majority_and_records_copies(folder: Path, tmp_path: Path, augment: bool) -> None:
    out = tmp_path / "ds"
    summary = build(folder_config(folder, out, BalanceConfig(mode="oversample", augment=augment)))
    assert summary.class_counts == {"a": 30, "b": 30, "c": 30, "d": 30}
    rows = _table(out)
    pixels = _pixels(out)
    by_key = {r["key"]: r for r in rows if r["derived_from"] is None}
    copies = [r for r in rows if r["derived_from"] is not None]
    assert len(copies) == 120 - sum(COUNTS.values())
    assert len({r["key"] for r in rows}) == len(rows)  # copies get keys of their own
    for copy in copies:
        original = by_key[copy["derived_from"]]
        assert copy["class_name"] == original["class_name"]
        same = np.array_equal(pixels[(copy["shard"], copy["row"])], pixels[(original["shard"], original["row"])])
        if augment:
            assert not same, f"copy {copy['key']} is byte-identical to {original['key']}"
            assert copy["augmentation"].startswith("hflip,affine,color@seed=")
        else:
            assert same and copy["augmentation"] is None
    # The copies' pixels are drawn by albumentations through OpenCV, whose versions move them
    # (OpenCV 4.14 and 5.0 draw different affine copies): the manifest names the versions that drew them.
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    if augment:
        import albumentations
        import cv2

        assert manifest["augmented_by"] == {"albumentations": albumentations.__version__, "opencv": cv2.__version__}
    else:
        assert "augmented_by" not in manifest
    # Copies spread over the originals: d (4 originals, 26 copies) copies each 6 or 7 times.
    per_original = Counter(c["derived_from"] for c in copies if c["class_name"] == "d")
    assert sorted(set(per_original.values())) == [6, 7]
    # The output is shuffled: copies are not all at the end.
    labels = [r["label"] for r in rows]
    assert labels != sorted(labels)


def test_undersample_brings_every_class_to_the_minority(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    summary = build(folder_config(folder, out, BalanceConfig(mode="undersample")))
    assert summary.class_counts == {"a": 4, "b": 4, "c": 4, "d": 4}
    assert summary.rejections == {"undersampled": 26 + 14 + 5}
    assert all(r["derived_from"] is None for r in _table(out))


def test_weights_mode_writes_weights_that_equalize_classes(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(folder_config(folder, out, BalanceConfig(mode="weights")))
    arrays = open_dataset(out).load_all()
    assert arrays.weights is not None and len(arrays.images) == sum(COUNTS.values())
    sums = [float(arrays.weights[arrays.labels == c].sum()) for c in range(4)]
    assert sums == pytest.approx([sums[0]] * 4, rel=1e-5)
    assert "weight" in pq.read_table(out / "samples.parquet").column_names


def test_same_seed_gives_the_same_balanced_dataset_byte_for_byte(folder: Path, tmp_path: Path) -> None:
    balance = BalanceConfig(mode="oversample", val_fraction=0.2)
    outs = [tmp_path / "one", tmp_path / "two"]
    for out in outs:
        build(folder_config(folder, out, balance))
    files = lambda out: {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}  # noqa: E731
    one, two = files(outs[0]), files(outs[1])
    assert one.keys() == two.keys() and "samples.parquet" in one
    for name in one:
        if name != "manifest.json":  # holds the output path in its config
            assert one[name] == two[name], name
    build(folder_config(folder, tmp_path / "three", balance, seed=1))
    assert files(tmp_path / "three")["samples.parquet"] != one["samples.parquet"]


def test_a_class_below_the_minimum_fails_or_is_dropped(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--min-class-count: class\(es\) 'd' \(4\)"):
        build(folder_config(folder, tmp_path / "x", BalanceConfig(mode="oversample", min_class_count=5)))
    summary = build(folder_config(folder, tmp_path / "y", BalanceConfig(mode="oversample", min_class_count=5, drop_small_classes=True)))
    assert summary.class_counts == {"a": 30, "b": 30, "c": 30, "d": 0}
    assert summary.rejections == {"small_class": 4}


def test_undersampling_keeps_one_member_per_duplicate_group_first(tmp_path: Path) -> None:
    # b: 6 distinct images, 4 of them with an exact copy (dedup off): 10 files.
    src = make_folder(tmp_path / "src", {"a": 5, "b": 6}, copies={"b": 4}, seed=9)
    for by_cluster, expect_unique in ((True, True), (False, None)):
        out = tmp_path / f"ds-{by_cluster}"
        build(folder_config(src, out, BalanceConfig(mode="undersample", undersample_by_cluster=by_cluster), dedup=False))
        kept = [r["content_hash"] for r in _table(out) if r["class_name"] == "b"]
        assert len(kept) == 5
        if expect_unique:
            assert len(set(kept)) == 5


def test_balancing_an_unlabeled_dataset_is_a_clear_error(tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"x": 3})
    for p in (src / "x").iterdir():
        p.rename(src / p.name)
    with pytest.raises(ConfigError, match="--balance weights: the sources yield no class labels"):
        build(folder_config(src, tmp_path / "ds", BalanceConfig(mode="weights")))


@pytest.mark.slow
def test_process_workers_write_the_same_bytes_as_serial(folder: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    balance = BalanceConfig(mode="oversample", val_fraction=0.2)
    serial = folder_config(folder, tmp_path / "serial", balance)
    build(serial)
    build(replace(serial, output=str(tmp_path / "process"), executor="process", workers=2))
    for name in ("shards", "samples.parquet"):
        a, b = tmp_path / "serial" / name, tmp_path / "process" / name
        files = sorted(a.rglob("*")) if a.is_dir() else [a]
        for f in files:
            if f.is_file():
                assert f.read_bytes() == (b / f.relative_to(a) if a.is_dir() else b).read_bytes(), f.name


@pytest.mark.parametrize("dtype", ["uint8", "float16"])
def test_shards_are_the_same_whatever_the_write_block(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    """Shards are written a block of images at a time; one image per block
    (augmented copies and normalized floats included) gives the same files."""
    from gandata.config import OutputConfig
    from gandata.write import shards

    out_config = OutputConfig(shard_size=64, dtype=dtype, normalize="standardize" if dtype != "uint8" else "minus1-1")
    config = BalanceConfig(mode="oversample", augment=True)
    build(folder_config(folder, tmp_path / "whole", config, output_config=out_config))
    monkeypatch.setattr(shards, "BLOCK_BYTES", 1)
    build(folder_config(folder, tmp_path / "single", config, output_config=out_config))
    whole, single = (sorted((tmp_path / name / "shards").iterdir()) for name in ("whole", "single"))
    assert len(whole) == 2 and [p.read_bytes() for p in whole] == [p.read_bytes() for p in single]
