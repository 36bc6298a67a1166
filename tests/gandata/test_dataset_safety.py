"""Hostile or broken datasets on disk (issue 15, bugs 4, 5, 14): a manifest
of the wrong shape is a FormatError naming the field, shard paths stay inside
the dataset and are regular files, split and class names never become paths
outside an export folder."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from gandata import open_dataset
from gandata.cli import main
from gandata.dataset.manifest import read_manifest
from gandata.dataset.verify import verify_dataset
from gandata.errors import FormatError


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _edit(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m.__setitem__(key, value)


def _shard(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["shards"][0].__setitem__(key, value)


BROKEN = {
    "classes": _set("classes", None),
    "shards": _set("shards", {}),
    "shards[0].path": lambda m: m["shards"][0].pop("path"),
    "image_shape": _set("image_shape", [3, 64]),
    "num_samples": _set("num_samples", "many"),
    "shards[0].num_samples": _shard("num_samples", "many"),
    "class_counts": _set("class_counts", [1, 2]),
    "normalization": _set("normalization", {"mode": "x", "offset": [0.5], "scale": 1}),
    "dtype": _set("dtype", "object"),
    "shards[0].split": _shard("split", "../../escape"),
}


@pytest.mark.parametrize("field", sorted(BROKEN))
def test_a_manifest_of_the_wrong_shape_is_a_format_error_naming_the_field(
    shapes_dataset: Path, tmp_path: Path, field: str
) -> None:
    root = _copy(shapes_dataset, tmp_path / "ds")
    _edit(root, BROKEN[field])
    with pytest.raises(FormatError, match=re.escape(field)):
        read_manifest(root)
    for command in (["verify", str(root)], ["stats", str(root)], ["preview", str(root), "-o", str(tmp_path / "p.png")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, (command, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert field.split("[")[0] in result.output


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.safetensors", "shards/../../outside.safetensors", "C:\\x"])
def test_shard_paths_outside_the_dataset_are_refused(shapes_dataset: Path, tmp_path: Path, path: str) -> None:
    root = _copy(shapes_dataset, tmp_path / "ds")
    _edit(root, _shard("path", path))
    with pytest.raises(FormatError, match=r"shards\[0\]\.path"):
        open_dataset(root)
    with pytest.raises(FormatError, match=r"shards\[0\]\.path"):
        verify_dataset(root)


def test_a_shard_symlinked_out_of_the_dataset_is_neither_verified_nor_served(shapes_dataset: Path, tmp_path: Path) -> None:
    root = _copy(shapes_dataset, tmp_path / "ds")
    first = root / json.loads((root / "manifest.json").read_text())["shards"][0]["path"]
    foreign = tmp_path / "foreign.safetensors"
    os.rename(first, foreign)
    os.symlink(foreign, first)
    report = verify_dataset(root)
    assert not report.ok and "not a regular file inside the dataset" in report.problems[0]
    with pytest.raises(FormatError, match="not a regular file inside the dataset"):
        open_dataset(root)[0]


def test_a_fifo_shard_does_not_hang_the_readers(shapes_dataset: Path, tmp_path: Path) -> None:
    root = _copy(shapes_dataset, tmp_path / "ds")
    first = root / json.loads((root / "manifest.json").read_text())["shards"][0]["path"]
    first.unlink()
    os.mkfifo(first)
    report = verify_dataset(root)
    assert not report.ok and "not a regular file" in report.problems[0]
    with pytest.raises(FormatError, match="not a regular file"):
        open_dataset(root)[0]


def test_export_to_folder_never_writes_outside_dir_via_a_split_name(shapes_dataset: Path, tmp_path: Path) -> None:
    root = _copy(shapes_dataset, tmp_path / "ds")
    _edit(root, lambda m: [s.__setitem__("split", "../../escaped") for s in m["shards"][:1]])
    work = tmp_path / "work"
    work.mkdir()
    result = CliRunner().invoke(main, ["export", str(root), "--to", "folder", str(work / "a" / "b")])
    assert result.exit_code == 2, result.output
    assert "split" in result.output
    assert not (tmp_path / "escaped").exists() and not (work / "escaped").exists()


def test_export_to_folder_refuses_a_class_name_with_a_separator(shapes_dataset: Path, tmp_path: Path) -> None:
    root = _copy(shapes_dataset, tmp_path / "ds")

    def rename(m: dict[str, Any]) -> None:
        old = m["classes"][0]
        m["classes"][0] = "../evil"
        m["class_counts"]["../evil"] = m["class_counts"].pop(old)

    _edit(root, rename)
    result = CliRunner().invoke(main, ["export", str(root), "--to", "folder", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "evil").exists()
