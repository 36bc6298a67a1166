"""Tests of the local folder source (gandata.sources.folder)."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection
from gandata.sources.base import SourceContext
from gandata.sources.folder import (
    MIN_PARTITION_ITEMS,
    PARALLEL_PARTITIONS,
    PARTITION_SIZE,
    FolderSource,
    open_folder,
    partition_chunks,
)
from tests.common.source_records import read_all, samples


def image_bytes(fmt: str = "PNG", color=(200, 30, 30), size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG", (10, 200, 10))


def write(root, rel: str, data: bytes = PNG) -> str:
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def open_src(root, labels: str | None = None, ctx: SourceContext | None = None) -> FolderSource:
    return open_folder(str(root), SourceSpec(uri=str(root), labels=labels), ctx or SourceContext())


def rejections(records) -> dict[str, Rejection]:
    return {k: r for k, r in records.items() if isinstance(r, Rejection)}


def test_imagefolder_labels_nested_and_root(tmp_path):
    write(tmp_path, "cats/a.png")
    write(tmp_path, "cats/2019/summer/b.jpg", JPEG)
    write(tmp_path, "dogs/c.png")
    write(tmp_path, "loose.png")
    src = open_src(tmp_path)
    recs = read_all(src)
    got = samples(recs)
    assert {k: s.label for k, s in got.items()} == {
        "cats/a.png": "cats",
        "cats/2019/summer/b.jpg": "cats",
        "dogs/c.png": "dogs",
        "loose.png": None,
    }
    assert not rejections(recs)
    s = got["cats/2019/summer/b.jpg"]
    assert s.data == JPEG and s.array is None
    assert s.locator == os.path.join(str(tmp_path), "cats/2019/summer/b.jpg")
    assert s.provenance == {"origin": "cats/2019/summer/b.jpg"}
    assert src.class_names() is None


@pytest.mark.parametrize("prefix", ["folder:", "file:"])
def test_uri_prefixes(tmp_path, prefix):
    write(tmp_path, "cats/a.png")
    uri = prefix + str(tmp_path)
    src = open_folder(uri, SourceSpec(uri=uri), SourceContext())
    assert src.uri == uri and src.root == str(tmp_path)
    assert set(samples(read_all(src))) == {"cats/a.png"}


@pytest.mark.parametrize("header", [True, False])
def test_csv_labels(tmp_path, header):
    data = tmp_path / "data"
    write(data, "x/1.png")
    write(data, "x/2.png")
    write(data, "top.png")
    write(data, "unlisted.png")
    lines = ["x/1.png,zebra", "./x/2.png , lion", "top.png,zebra", "gone.png,lion", "blank.png,"]
    if header:
        lines.insert(0, "path,label")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    recs = read_all(open_src(data, labels=str(csv_path)))
    got = samples(recs)
    # Folder names mean nothing with a CSV; unlisted files are unlabeled.
    assert {k: s.label for k, s in got.items()} == {
        "x/1.png": "zebra", "x/2.png": "lion", "top.png": "zebra", "unlisted.png": None,
    }
    rej = rejections(recs)
    assert set(rej) == {"gone.png", "blank.png"}
    assert rej["gone.png"].reason == "corrupt" and "missing" in rej["gone.png"].detail


def test_csv_from_context_header_order_and_inside_root(tmp_path):
    write(tmp_path, "a.png")
    write(tmp_path, "b.png")
    csv_path = tmp_path / "labels.csv"  # kept inside the folder: not an input
    csv_path.write_text("label,path\nsky,a.png\n")
    src = open_src(tmp_path, ctx=SourceContext(labels_csv=str(csv_path)))
    recs = read_all(src)
    assert not rejections(recs)
    assert {k: s.label for k, s in samples(recs).items()} == {"a.png": "sky", "b.png": None}


def test_csv_path_outside_root_is_unsafe(tmp_path):
    data = tmp_path / "data"
    write(data, "a.png")
    write(tmp_path, "secret.png")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("a.png,x\n../secret.png,y\n/etc/passwd,z\n")
    recs = read_all(open_src(data, labels=str(csv_path)))
    assert samples(recs).keys() == {"a.png"}
    assert {k: r.reason for k, r in rejections(recs).items()} == {"../secret.png": "unsafe_path", "/etc/passwd": "unsafe_path"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("path,klass\na.png,x\n", "no 'label' column"),
        ("a.png\nb.png\n", "no label column"),
        ("filename,label\n", None),  # header only: fine, nothing labeled
        ("a.png,x\na.png,y\n", "earlier line"),
        ("", "no rows"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_bad_csv(tmp_path, content, message):
    data = tmp_path / "data"
    write(data, "a.png")
    csv_path = tmp_path / "my-labels.csv"
    if isinstance(content, bytes):
        csv_path.write_bytes(content)
    else:
        csv_path.write_text(content)
    if message is None:
        assert samples(read_all(open_src(data, labels=str(csv_path))))["a.png"].label is None
        return
    with pytest.raises(SourceError, match=message) as err:
        open_src(data, labels=str(csv_path))
    assert "my-labels.csv" in str(err.value)


def test_missing_csv(tmp_path):
    write(tmp_path, "a.png")
    with pytest.raises(SourceError, match="nope.csv"):
        open_src(tmp_path, labels=str(tmp_path / "nope.csv"))


def test_hidden_files_and_folders(tmp_path):
    write(tmp_path, "cats/a.png")
    write(tmp_path, "cats/.b.png")
    write(tmp_path, ".DS_Store", b"junk")
    for i in range(5):
        write(tmp_path, f".git/objects/{i}.png")
    write(tmp_path, "cats/.thumbs/deep/x.png")
    recs = read_all(open_src(tmp_path))
    assert samples(recs).keys() == {"cats/a.png"}
    rej = rejections(recs)
    # One rejection per hidden folder, none for the files inside it.
    assert set(rej) == {"cats/.b.png", ".DS_Store", ".git", "cats/.thumbs"}
    assert all(r.reason == "hidden" for r in rej.values())
    assert "folder" in rej[".git"].detail


def test_non_image_files_and_sniffing(tmp_path):
    write(tmp_path, "cats/notes.txt", b"hello, these are notes")
    write(tmp_path, "cats/README", b"no extension here")
    write(tmp_path, "cats/photo.dat", PNG)  # an image behind a wrong extension
    write(tmp_path, "cats/jpeg_no_ext", JPEG)
    write(tmp_path, "cats/empty.png", b"")  # the decoder rejects it later
    recs = read_all(open_src(tmp_path))
    got = samples(recs)
    assert got.keys() == {"cats/photo.dat", "cats/jpeg_no_ext", "cats/empty.png"}
    assert got["cats/photo.dat"].data == PNG and got["cats/photo.dat"].label == "cats"
    assert got["cats/empty.png"].data == b""
    rej = rejections(recs)
    assert rej["cats/notes.txt"].reason == "unsupported" and ".txt" in rej["cats/notes.txt"].detail
    assert rej["cats/README"].reason == "unsupported" and "no extension" in rej["cats/README"].detail


def test_uppercase_extension(tmp_path):
    write(tmp_path, "a/IMG_1.JPG", b"not really a jpeg")
    assert samples(read_all(open_src(tmp_path))).keys() == {"a/IMG_1.JPG"}


def test_too_large_not_read(tmp_path, monkeypatch):
    write(tmp_path, "a/big.png", PNG + b"\0" * 1000)
    write(tmp_path, "a/small.png")
    src = dataclasses.replace(open_src(tmp_path), max_bytes=len(PNG))
    opened = []
    real_open = open

    def spy_open(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy_open)
    recs = read_all(src)
    assert rejections(recs)["a/big.png"].reason == "too_large"
    assert samples(recs).keys() == {"a/small.png"}
    assert not any(p.endswith("big.png") for p in opened)


symlinks = pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")


def _symlink(target, link) -> None:
    try:
        os.symlink(target, link)
    except OSError as exc:  # e.g. Windows without the privilege
        pytest.skip(f"cannot create symlinks: {exc}")


@symlinks
def test_symlinks(tmp_path):
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    write(outside, "secret.png")
    write(root, "cats/a.png")
    os.makedirs(root / "dogs")
    _symlink(outside / "secret.png", root / "dogs" / "escape.png")
    _symlink("../cats/a.png", root / "dogs" / "inside.png")
    _symlink(root, root / "cats" / "loop")  # a folder link: never followed
    _symlink(root / "nothing.png", root / "dangling.png")
    recs = read_all(open_src(root))
    got = samples(recs)
    assert got.keys() == {"cats/a.png", "dogs/inside.png"}
    assert got["dogs/inside.png"].label == "dogs" and got["dogs/inside.png"].data == PNG
    rej = rejections(recs)
    assert {k: r.reason for k, r in rej.items()} == {
        "dogs/escape.png": "unsafe_path",
        "cats/loop": "unsupported",
        "dangling.png": "corrupt",
    }


def test_deterministic_partitions_and_pickle(tmp_path):
    n = 2 * PARTITION_SIZE + 88
    names = [f"c{i % 3}/img_{i:04d}.png" for i in range(n)]
    for name in names:
        write(tmp_path, name, PNG)
    src = open_src(tmp_path)
    parts = src.partitions()
    # Cut into equal parts, as many as MIN_PARTITION_ITEMS allows up to
    # PARALLEL_PARTITIONS, so that workers finish together.
    count = min(PARALLEL_PARTITIONS, n // MIN_PARTITION_ITEMS)
    assert len(parts) == count
    assert {len(p.items) for p in parts} == {n // count, n // count + 1}
    assert [p.index for p in parts] == list(range(count))
    flat = [item for p in parts for item in p.items]
    assert flat == sorted(names)
    assert src.partitions() == parts
    assert open_src(tmp_path).partitions() == parts
    # Sources and partitions cross process boundaries.
    clone = pickle.loads(pickle.dumps(src))
    assert clone == src
    part = pickle.loads(pickle.dumps(parts[1]))
    assert [r.key for r in clone.read(part)] == list(parts[1].items)


def test_fingerprint(tmp_path):
    write(tmp_path, "cats/a.png")
    path_b = write(tmp_path, "dogs/b.png")
    src = open_src(tmp_path)
    fp = src.fingerprint()
    assert fp == src.fingerprint() == open_src(tmp_path).fingerprint()
    # Content change (size differs).
    write(tmp_path, "dogs/b.png", JPEG)
    fp2 = src.fingerprint()
    assert fp2 != fp
    # Same size, new mtime.
    st = os.stat(path_b)
    os.utime(path_b, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fp3 = src.fingerprint()
    assert fp3 != fp2
    # A new file.
    write(tmp_path, "dogs/c.png")
    fp4 = src.fingerprint()
    assert fp4 != fp3
    # The labels CSV is part of it.
    csv_path = tmp_path.parent / f"{tmp_path.name}-labels.csv"
    csv_path.write_text("cats/a.png,x\n")
    with_csv = open_src(tmp_path, labels=str(csv_path))
    fp5 = with_csv.fingerprint()
    assert fp5 != fp4
    csv_path.write_text("cats/a.png,yy\n")
    assert with_csv.fingerprint() != fp5


def test_missing_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError, match=r"^source \./x: no such folder"):
        open_folder("./x", SourceSpec(uri="./x"), SourceContext())
    (tmp_path / "file.zip").write_bytes(b"PK")
    with pytest.raises(SourceError, match="no such folder"):
        open_folder("folder:file.zip", SourceSpec(uri="folder:file.zip"), SourceContext())
    # A folder removed after opening fails when listed.
    os.makedirs("y")
    src = open_folder("y", SourceSpec(uri="y"), SourceContext())
    os.rmdir("y")
    with pytest.raises(SourceError, match="no such folder"):
        src.partitions()


def test_empty_folder(tmp_path):
    assert open_src(tmp_path).partitions() == []


@pytest.mark.parametrize(
    ("n", "expected_sizes"),
    [
        (0, []),
        (5, [5]),
        (MIN_PARTITION_ITEMS * 3, [MIN_PARTITION_ITEMS] * 3),  # too few items for 16 partitions
        (PARALLEL_PARTITIONS * 40, [40] * PARALLEL_PARTITIONS),
        # large: at most PARTITION_SIZE each, the last two cut into halves and quarters
        (40 * PARTITION_SIZE - 80, [PARTITION_SIZE - 2] * 38 + [127, 127, 127, 63, 64]),
        (6000, [187, 188] * 15 + [93, 94, 94, 47, 47]),
    ],
)
def test_partition_chunks_are_balanced(n, expected_sizes):
    parts = partition_chunks(list(range(n)), PARTITION_SIZE, lambda c: "", min_partitions=PARALLEL_PARTITIONS)
    assert [len(p.items) for p in parts] == expected_sizes
    assert [x for p in parts for x in p.items] == list(range(n))
    assert [p.index for p in parts] == list(range(len(parts)))


def test_a_stream_is_not_tapered():
    # A compressed stream decompresses from its start for every partition:
    # no partitions beyond what the size needs.
    parts = partition_chunks(list(range(6000)), 300, lambda c: "", min_partitions=1)
    assert [len(p.items) for p in parts] == [300] * 20


def test_a_folder_swapped_for_a_symlink_after_listing_is_not_followed(tmp_path: Path) -> None:
    # Issue 15: listing and reading are apart in time; a folder replaced by a
    # link to the outside in between must not lead the read out of the root.
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "c").mkdir(parents=True)
    (root / "c" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n inside")
    outside.mkdir()
    (outside / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n SECRET")
    src = open_src(root)
    parts = src.partitions()
    (root / "c" / "x.png").unlink()
    (root / "c").rmdir()
    os.symlink(outside, root / "c")
    items = [item for p in parts for item in src.read(p)]
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert items[0].reason == "unsafe_path"


def test_a_file_swapped_for_a_fifo_after_listing_does_not_block(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "c").mkdir(parents=True)
    (root / "c" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n inside")
    src = open_src(root)
    parts = src.partitions()
    (root / "c" / "x.png").unlink()
    os.mkfifo(root / "c" / "x.png")
    items = [item for p in parts for item in src.read(p)]
    assert len(items) == 1 and isinstance(items[0], Rejection) and items[0].reason == "unsupported"


def test_a_build_stats_the_folder_once_for_its_fingerprint(tmp_path, monkeypatch):
    # The fingerprint (a stat of every file) is asked for by the dataset's
    # fingerprint and again by the ingest key: one walk per build, not two.
    from gandata.config import BuildConfig, ImageConfig
    from gandata.pipeline import build
    from gandata.sources.folder import FolderSource

    for i in range(6):
        (tmp_path / "src" / "a").mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 256, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "src" / "a" / f"{i}.png")
    calls = []
    original = FolderSource.fingerprint
    monkeypatch.setattr(FolderSource, "fingerprint", lambda self: calls.append(1) or original(self))
    build(BuildConfig(sources=(SourceSpec(str(tmp_path / "src")),), output=str(tmp_path / "out"),
                      image=ImageConfig(size_px=16), workers=1, executor="serial"))
    assert len(calls) == 1


def test_a_partition_opens_each_folder_once_beneath_the_root(tmp_path: Path, monkeypatch) -> None:
    # Files are opened one component at a time beneath the root (links
    # swapped in are refused), but a folder's descriptor is kept for the
    # files after it in the partition instead of re-walking it per file.
    root = tmp_path / "root"
    for folder in ("a", "b/c"):
        (root / folder).mkdir(parents=True)
        for i in range(3):
            (root / folder / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]))
    src = open_src(root)
    from gandata.sources import folder as folder_module

    walked: list[str] = []
    real_walk = folder_module._Beneath._open_folder
    monkeypatch.setattr(folder_module._Beneath, "_open_folder", lambda self, rel: walked.append(rel) or real_walk(self, rel))
    items = [item for p in src.partitions() for item in src.read(p)]
    assert len(items) == 6 and not any(isinstance(item, Rejection) for item in items)
    assert sorted(walked) == ["a", "b/c"]
