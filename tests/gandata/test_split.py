"""The stratified validation split, through the real pipeline."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gandata import open_dataset
from gandata.config import BalanceConfig
from gandata.errors import FormatError
from gandata.pipeline import build
from gandata.plan.split import group_ids, stratified_split
from tests.common.balance_helpers import folder_config, make_folder

COUNTS = {"a": 41, "b": 23, "c": 12, "d": 7}
# Exact copies (dedup off) form duplicate groups of two inside each class.
COPIES = {"a": 10, "b": 6, "c": 3, "d": 1}


@pytest.fixture(scope="module")
def split_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("split")
    src = make_folder(root / "src", COUNTS, copies=COPIES, seed=3)
    out = root / "ds"
    build(folder_config(src, out, BalanceConfig(val_fraction=0.1), dedup=False))
    return out


def test_val_split_keeps_class_proportions_within_one_sample(split_build: Path) -> None:
    rows = pq.read_table(split_build / "samples.parquet").to_pylist()
    totals = Counter(r["class_name"] for r in rows)
    val = Counter(r["class_name"] for r in rows if r["split"] == "val")
    for name, total in totals.items():
        assert abs(val[name] - 0.1 * total) <= 1, (name, val[name], total)
    assert sum(val.values()) > 0


def test_duplicate_groups_never_straddle_the_split(split_build: Path) -> None:
    rows = pq.read_table(split_build / "samples.parquet").to_pylist()
    sides = defaultdict(set)
    for r in rows:
        sides[r["content_hash"]].add(r["split"])
    assert sum(1 for r in rows if r["key"].endswith("-dup.png")) == sum(COPIES.values())
    assert all(len(s) == 1 for s in sides.values())


def test_reader_opens_the_val_split_by_name(split_build: Path) -> None:
    manifest = open_dataset(split_build).manifest
    val = open_dataset(split_build, split="val")
    train = open_dataset(split_build)
    assert len(val) == manifest["splits"]["val"] and len(train) == manifest["splits"]["train"]
    assert {s["split"] for s in manifest["shards"]} == {"train", "val"}
    with pytest.raises(FormatError, match="no split 'test'"):
        open_dataset(split_build, split="test")


def test_cluster_ids_group_samples_before_content_hashes() -> None:
    hashes = [b"x", b"y", b"z", b"z"]
    assert group_ids(hashes).tolist() == [0, 1, 2, 2]
    # A cluster id joins x and y although their hashes differ; -1 = no cluster.
    assert group_ids(hashes, np.array([5, 5, -1, -1])).tolist() == [0, 0, 1, 1]


def test_stratified_split_places_clusters_whole() -> None:
    labels = np.array([0] * 20 + [1] * 10)
    groups = np.array([0, 0, 0, 0] + list(range(1, 17)) + list(range(17, 27)))
    val = stratified_split(labels, groups, 0.2, seed=0)
    assert val[labels == 0].sum() == 4 and val[labels == 1].sum() == 2
    assert len(set(val[:4].tolist())) == 1
    assert (stratified_split(labels, groups, 0.2, seed=0) == val).all()
