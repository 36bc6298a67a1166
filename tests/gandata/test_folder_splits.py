"""A folder in the split layout (``DIR/train/<class>/``, ``DIR/val/<class>/``):
how the layout is decided, what a sample's split and label are, and how the
plan keeps a source's splits (issue 17 item 12)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gandata import open_dataset
from gandata.config import BalanceConfig, SourceSpec
from gandata.dataset.export import to_folder
from gandata.errors import BuildError, SourceError
from gandata.pipeline import build
from gandata.plan.split import NO_SPLIT, follow_groups, preassigned_splits
from gandata.records import Sample
from gandata.sources.base import SourceContext
from gandata.sources.folder import open_folder
from tests.common.balance_helpers import folder_config, make_folder


def _open(uri: str, **params: str):
    return open_folder(uri, SourceSpec(uri, params=params), SourceContext())


def _samples(source) -> list[Sample]:
    return [s for p in source.partitions() for s in source.read(p) if isinstance(s, Sample)]


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "samples.parquet").to_pylist()


def _split_tree(root: Path, splits: dict[str, dict[str, int]], seed: int = 0) -> Path:
    for i, (split, counts) in enumerate(splits.items()):
        make_folder(root / split, counts, seed=seed + i)
    return root


# --- the layout --------------------------------------------------------------------------------


def test_auto_reads_split_folders_as_splits_and_their_subfolders_as_classes(tmp_path: Path) -> None:
    root = _split_tree(tmp_path / "d", {"train": {"cat": 2, "dog": 1}, "validation": {"cat": 1}})
    # A file at the root has no split (the build's --val-fraction decides).
    (root / "loose.png").write_bytes((root / "train" / "cat" / "0000.png").read_bytes())
    source = _open(str(root))
    assert source.layout == "splits"
    got = sorted((s.key, s.split, s.label) for s in _samples(source))
    assert got == [
        ("loose.png", None, None),
        ("train/cat/0000.png", "train", "cat"), ("train/cat/0001.png", "train", "cat"),
        ("train/dog/0000.png", "train", "dog"),
        ("validation/cat/0000.png", "val", "cat"),  # validation is val's HF name
    ]


def test_split_names_are_case_insensitive_and_hidden_folders_do_not_count(tmp_path: Path) -> None:
    root = _split_tree(tmp_path / "d", {"Train": {"a": 1}, "TEST": {"a": 1}})
    (root / ".cache").mkdir()
    assert {(s.split, s.label) for s in _samples(_open(str(root)))} == {("train", "a"), ("test", "a")}


def test_a_folder_with_any_other_top_level_folder_keeps_the_classes_layout(tmp_path: Path) -> None:
    # Mixed: `train` next to `cats` is read as it always was, two classes.
    root = make_folder(tmp_path / "d", {"train": 1, "cats": 1})
    source = _open(str(root))
    assert source.layout == "classes"
    assert {(s.split, s.label) for s in _samples(source)} == {(None, "train"), (None, "cats")}


def test_classes_really_named_train_and_val_need_layout_classes(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "d", {"train": 1, "val": 1})
    assert _open(str(root)).layout == "splits"
    for source in (_open(f"{root}?layout=classes"), _open(str(root), layout="classes")):
        assert source.layout == "classes"
        assert {(s.split, s.label) for s in _samples(source)} == {(None, "train"), (None, "val")}


def test_layout_splits_refuses_a_folder_that_is_not_a_split_in_one_line(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "d", {"train": 1, "cats": 1})
    with pytest.raises(SourceError, match=r"layout=splits, but the top-level folder\(s\) 'cats' are not split names") as info:
        _open(f"folder:{root}?layout=splits")
    assert "\n" not in str(info.value)
    with pytest.raises(SourceError, match="layout='sideways' must be one of auto, classes, splits"):
        _open(f"{root}?layout=sideways")
    with pytest.raises(SourceError, match=r"unknown option\(s\) colour"):
        _open(f"{root}?colour=red")


def test_a_labels_csv_keeps_auto_on_the_classes_layout(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "d", {"train": 1, "val": 1})
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\ntrain/0000.png,x\nval/0000.png,y\n")
    source = open_folder(str(root), SourceSpec(str(root), labels=str(csv)), SourceContext())
    assert source.layout == "classes"
    assert {(s.split, s.label) for s in _samples(source)} == {(None, "x"), (None, "y")}


def test_the_layout_changes_the_fingerprint_only_when_it_is_splits(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "d", {"train": 1, "val": 1})
    assert _open(str(root)).fingerprint() != _open(str(root), layout="classes").fingerprint()


def test_a_folder_named_with_a_question_mark_is_still_a_folder(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "what?layout=x", {"a": 1})
    assert [s.label for s in _samples(_open(str(root)))] == ["a"]


# --- through the build --------------------------------------------------------------------------


def test_files_directly_in_a_split_folder_are_unlabeled_samples_of_that_split(tmp_path: Path) -> None:
    root = _split_tree(tmp_path / "d", {"train": {"a": 3}, "val": {"a": 1}})
    make_folder(tmp_path / "loose", {"x": 2}, seed=9)
    for i, png in enumerate(sorted((tmp_path / "loose" / "x").iterdir())):
        (root / "val" / f"loose{i}.png").write_bytes(png.read_bytes())
    (root / "val" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    build(folder_config(root, out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] == {"train": 3, "val": 3} and manifest["num_unlabeled"] == 2
    assert Counter((r["split"], r["class_name"]) for r in _rows(out)) == {("train", "a"): 3, ("val", "a"): 1, ("val", None): 2}
    assert manifest["rejections"] == {"unsupported": 1}


def test_val_fraction_cuts_only_the_samples_without_a_split(tmp_path: Path) -> None:
    tree = _split_tree(tmp_path / "tree", {"train": {"a": 10, "b": 6}, "val": {"a": 2, "b": 2}})
    plain = make_folder(tmp_path / "plain", {"a": 20, "b": 10}, seed=7)
    out = tmp_path / "out"
    config = folder_config(tree, out, BalanceConfig(val_fraction=0.5))
    build(dataclasses.replace(config, sources=(SourceSpec(str(tree)), SourceSpec(str(plain)))))
    rows = _rows(out)
    by = Counter((Path(r["source"]).name, r["split"], r["class_name"]) for r in rows)
    # The tree's splits are kept whole; half of the plain folder's classes go to val.
    assert by[("tree", "train", "a")] == 10 and by[("tree", "train", "b")] == 6
    assert by[("tree", "val", "a")] == 2 and by[("tree", "val", "b")] == 2
    assert by[("plain", "val", "a")] == 10 and by[("plain", "val", "b")] == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preassigned_splits"] == {"train": 16, "val": 4}
    assert manifest["splits"] == {"train": 31, "val": 19}


def test_oversampling_copies_only_training_samples_and_moves_none(tmp_path: Path) -> None:
    tree = _split_tree(tmp_path / "tree", {"train": {"a": 8, "b": 2}, "val": {"a": 1, "b": 3}, "test": {"a": 2}})
    out = tmp_path / "out"
    build(folder_config(tree, out, BalanceConfig(mode="oversample", val_fraction=0.25)))
    rows = _rows(out)
    assert Counter((r["split"], r["class_name"]) for r in rows if r["derived_from"] is None) == {
        ("train", "a"): 8, ("train", "b"): 2, ("val", "a"): 1, ("val", "b"): 3, ("test", "a"): 2,
    }
    copies = [r for r in rows if r["derived_from"] is not None]
    assert copies and {r["split"] for r in copies} == {"train"}
    assert all(r["derived_from"].startswith("train/") for r in copies)
    assert Counter(r["class_name"] for r in rows if r["split"] == "train") == {"a": 8, "b": 8}
    assert len(open_dataset(out, split="test")) == 2


def test_a_duplicate_across_the_given_splits_is_kept_as_given_or_deduplicated(tmp_path: Path) -> None:
    tree = _split_tree(tmp_path / "tree", {"train": {"a": 3}, "val": {"a": 2}})
    (tree / "val" / "a" / "leak.png").write_bytes((tree / "train" / "a" / "0000.png").read_bytes())
    kept = tmp_path / "kept"
    build(folder_config(tree, kept, dedup=False))
    assert Counter(r["split"] for r in _rows(kept)) == {"train": 3, "val": 3}
    deduped = tmp_path / "deduped"
    build(folder_config(tree, deduped))
    # The exact copy is removed by dedup: the first in source order (train/) stays.
    assert Counter(r["split"] for r in _rows(deduped)) == {"train": 3, "val": 2}
    rejected = [json.loads(line) for line in (deduped / "rejected.jsonl").read_text().splitlines()]
    assert [(r["reason"], r["key"]) for r in rejected] == [("duplicate", "val/a/leak.png")]


# --- the plan's helpers ---------------------------------------------------------------------------


def test_preassigned_splits_are_codes_and_a_foreign_split_name_is_a_build_error() -> None:
    def staged(values):
        return SimpleNamespace(table=pa.table({"split": pa.array(values, pa.string())}), num_rows=len(values))

    assert preassigned_splits(staged([None, None])) is None
    assert preassigned_splits(staged(["val", None, "train", "test"])).tolist() == [1, NO_SPLIT, 0, 2]
    with pytest.raises(BuildError, match="'holdout'"):
        preassigned_splits(staged(["holdout"]))


def test_a_free_duplicate_follows_its_group_into_the_given_split() -> None:
    groups = np.array([0, 0, 1, 2, 2])
    codes = np.array([1, NO_SPLIT, NO_SPLIT, NO_SPLIT, 2], np.int8)
    assert follow_groups(groups, codes, codes < 0).tolist() == [NO_SPLIT, 1, NO_SPLIT, 2, NO_SPLIT]


def test_a_one_split_export_whose_classes_are_split_names_round_trips(tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"train": 2, "test": 1})  # classes named like splits
    out = tmp_path / "out"
    build(folder_config(Path(f"{src}?layout=classes"), out))
    to_folder(out, tmp_path / "tree")
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == ["classes.txt", "train"]
    again = tmp_path / "again"
    build(folder_config(tmp_path / "tree", again))
    manifest = json.loads((again / "manifest.json").read_text())
    assert manifest["classes"] == ["test", "train"] and manifest["splits"] == {"train": 3}


# --- class order: classes.txt --------------------------------------------------------------------


def _class_tree(root: Path, classes: list[str]) -> Path:
    from PIL import Image

    rng = np.random.default_rng(len(classes))
    for name in classes:
        (root / name).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / name / "a.png")
    return root


def test_classes_txt_gives_the_label_order_and_is_not_an_input(tmp_path: Path) -> None:
    root = _class_tree(tmp_path / "tree", ["zebra", "ant", "moth"])
    (root / "classes.txt").write_text("zebra\nant\n\n")
    source = _open(str(root))
    assert source.class_names() == ["zebra", "ant"]
    assert all(getattr(x, "key", None) != "classes.txt" for x in _samples(source))
    out = tmp_path / "out"
    build(folder_config(str(root), out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["zebra", "ant", "moth"]  # listed first, the rest sorted after
    assert not any(row.get("locator", "").endswith("classes.txt") for row in
                   (json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()))


def test_classes_txt_changes_the_fingerprint_only_where_present(tmp_path: Path) -> None:
    root = _class_tree(tmp_path / "tree", ["b", "a"])
    plain = _open(str(root)).fingerprint()
    (root / "classes.txt").write_text("b\na\n")
    ordered = _open(str(root)).fingerprint()
    (root / "classes.txt").write_text("a\nb\n")
    assert len({plain, ordered, _open(str(root)).fingerprint()}) == 3


@pytest.mark.parametrize("content, message", [
    (b"a\nb\na\n", "listed twice"),
    (b"a\ncat\x00evil\n", "folder's name"),
    (b"../../x\n", "folder's name"),
    (b"\xff\xfe\x00a", "not UTF-8"),
    (b"a\n" * 600_000, "at most"),
])
def test_a_bad_classes_txt_is_a_one_line_source_error(tmp_path: Path, content: bytes, message: str) -> None:
    root = _class_tree(tmp_path / "tree", ["a", "b"])
    (root / "classes.txt").write_bytes(content)
    with pytest.raises(SourceError, match=message) as info:
        _open(str(root))
    assert "classes.txt" in str(info.value) and "\n" not in str(info.value)


def test_a_linked_classes_txt_is_not_read(tmp_path: Path) -> None:
    root = _class_tree(tmp_path / "tree", ["b", "a"])
    (tmp_path / "outside.txt").write_text("b\na\n")
    (root / "classes.txt").symlink_to(tmp_path / "outside.txt")
    assert _open(str(root)).class_names() is None


def test_folder_export_refuses_a_class_name_no_folder_can_have(tmp_path: Path) -> None:
    """A class name with a control character (an hf dataset may have one) is
    a one-line ConfigError, not an OS error from mkdir."""
    from gandata.errors import ConfigError

    out = tmp_path / "ds"
    src = tmp_path / "arr.npz"
    np.savez(src, images=np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8),
             labels=np.array([0, 1, 0, 1]), classes=np.array(["ok", "bad\x00name"]))
    build(dataclasses.replace(folder_config(str(src), out), sources=(SourceSpec(f"npz:{src}"),)))
    with pytest.raises(ConfigError, match="cannot be a folder name"):
        to_folder(out, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()
