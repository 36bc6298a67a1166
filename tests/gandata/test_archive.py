"""Tests of the zip/tar archive source (gandata.sources.archive)."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import random
import stat
import struct
import tarfile
import zipfile

import pytest
from PIL import Image

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.archive import ArchiveSource, open_archive
from gandata.sources.base import SourceContext
from gandata.sources.folder import (
    MIN_PARTITION_ITEMS,
    PARALLEL_PARTITIONS,
    PARTITION_SIZE,
)
from tests.common.source_records import read_all, samples


def image_bytes(fmt: str = "PNG", color=(200, 30, 30), size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG", (10, 200, 10))
# Raw pixels compress well: deflate really has something to chew on.
BMP = image_bytes("BMP", (1, 2, 3), size=(64, 64))

TAR_MODES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}
FLAVOURS = [".zip", *TAR_MODES]

# (name, data) or (name, None) for a directory.
CLASSES = [
    ("cats/", None),
    ("cats/a.png", PNG),
    ("cats/sub/b.jpg", JPEG),
    ("dogs/c.png", PNG),
    ("root.png", JPEG),
    ("dogs/photo.dat", PNG),  # image behind a wrong extension
    ("dogs/notes.txt", b"just text"),
]


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED) -> str:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target.png")
                continue
            info = zipfile.ZipInfo(name)  # kept verbatim: crafted names survive
            info.compress_type = compression
            zf.writestr(info, b"" if data is None else data)
    return str(path)


def make_tar(path, members, mode="w") -> str:
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            if isinstance(data, tarfile.TarInfo):
                tf.addfile(data)
                continue
            info = tarfile.TarInfo(name.rstrip("/") if data is None else name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return str(path)


def make_archive(tmp_path, suffix, members, stem="data") -> str:
    path = tmp_path / f"{stem}{suffix}"
    if suffix == ".zip":
        return make_zip(path, members)
    return make_tar(path, members, TAR_MODES[suffix])


def open_src(path, labels=None, ctx=None) -> ArchiveSource:
    return open_archive(str(path), SourceSpec(uri=str(path), labels=labels), ctx or SourceContext())


def reasons(records) -> dict[str, str]:
    return {k: r.reason for k, r in records.items() if isinstance(r, Rejection)}


def tree(root) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = os.lstat(full).st_size
    return out


@pytest.mark.parametrize("suffix", FLAVOURS)
def test_flavours_with_classes(tmp_path, suffix):
    path = make_archive(tmp_path, suffix, CLASSES)
    src = open_src(path)
    assert src.kind == ("zip" if suffix == ".zip" else "tar")
    recs = read_all(src)
    got = samples(recs)
    assert {k: s.label for k, s in got.items()} == {
        "cats/a.png": "cats",
        "cats/sub/b.jpg": "cats",
        "dogs/c.png": "dogs",
        "root.png": None,
        "dogs/photo.dat": "dogs",
    }
    assert got["cats/sub/b.jpg"].data == JPEG and got["dogs/photo.dat"].data == PNG
    assert got["cats/a.png"].locator == f"{path}!cats/a.png"
    assert got["cats/a.png"].provenance == {"origin": "cats/a.png"}
    assert reasons(recs) == {"dogs/notes.txt": "unsupported"}
    assert ".txt" in recs["dogs/notes.txt"].detail
    assert src.class_names() is None


@pytest.mark.parametrize("suffix", FLAVOURS)
def test_nothing_extracted(tmp_path, monkeypatch, suffix):
    work = tmp_path / "work"
    work.mkdir()
    path = make_archive(tmp_path, suffix, CLASSES + [("../evil.png", PNG), ("/abs.png", PNG)])
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    recs = read_all(open_src(path))
    assert len(samples(recs)) == 5
    assert tree(tmp_path) == before
    assert os.listdir(work) == []


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz"])
def test_unsafe_names(tmp_path, suffix):
    crafted = ["../evil.png", "/abs.png", "good/../../up.png", "C:/win.png", "a\\..\\..\\b.png", "c:evil.png"]
    members = [("ok/fine.png", PNG)] + [(name, PNG) for name in crafted]
    path = make_archive(tmp_path, suffix, members)
    recs = read_all(open_src(path))
    assert samples(recs).keys() == {"ok/fine.png"}
    assert reasons(recs) == {name: "unsafe_path" for name in crafted}
    assert recs["/abs.png"].locator == f"{path}!/abs.png"


def test_dot_slash_names_are_normalised(tmp_path):
    path = make_tar(tmp_path / "x.tgz", [("./", None), ("./cats/", None), ("./cats/a.png", PNG), ("./top.png", PNG)], "w:gz")
    got = samples(read_all(open_src(path)))
    assert {k: s.label for k, s in got.items()} == {"cats/a.png": "cats", "top.png": None}
    assert got["cats/a.png"].locator == f"{path}!./cats/a.png"


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_tar_links_and_devices(tmp_path, mode):
    sym = tarfile.TarInfo("cats/link.png")
    sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("cats/hard.png")
    hard.type, hard.linkname = tarfile.LNKTYPE, "cats/a.png"
    fifo = tarfile.TarInfo("cats/pipe.png")
    fifo.type = tarfile.FIFOTYPE
    dev = tarfile.TarInfo("cats/dev.png")
    dev.type = tarfile.CHRTYPE
    path = make_tar(tmp_path / "x.tar", [("cats/a.png", PNG), ("s", sym), ("h", hard), ("f", fifo), ("d", dev)], mode)
    recs = read_all(open_src(f"tar:{path}"))
    assert samples(recs).keys() == {"cats/a.png"}
    assert reasons(recs) == {k: "unsupported" for k in ("cats/link.png", "cats/hard.png", "cats/pipe.png", "cats/dev.png")}
    assert "symbolic link" in recs["cats/link.png"].detail


def test_zip_symlink_member(tmp_path):
    link = zipfile.ZipInfo("cats/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = make_zip(tmp_path / "x.zip", [("cats/a.png", PNG), ("l", link)])
    recs = read_all(open_src(path))
    assert reasons(recs) == {"cats/link.png": "unsupported"}


def test_hidden_members(tmp_path):
    members = [
        ("cats/a.png", PNG),
        ("cats/.b.png", PNG),
        ("__MACOSX/cats/._a.png", b"\0\5\26\7"),
        *[(f".git/objects/{i}.png", PNG) for i in range(4)],
        (".git/", None),
    ]
    recs = read_all(open_src(make_zip(tmp_path / "x.zip", members)))
    assert samples(recs).keys() == {"cats/a.png"}
    assert reasons(recs) == {"cats/.b.png": "hidden", "__MACOSX/cats/._a.png": "hidden", ".git": "hidden"}
    assert "4 members" in recs[".git"].detail


def _data_offset(path, name) -> tuple[int, int]:
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = struct.unpack("<4s5H3L2H", fh.read(30))
    return info.header_offset + 30 + header[9] + header[10], info.compress_size


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_corrupt_zip_member(tmp_path, compression):
    path = make_zip(tmp_path / "x.zip", [("cats/bad.bmp", BMP), ("cats/good.png", PNG)], compression)
    start, length = _data_offset(path, "cats/bad.bmp")
    with open(path, "r+b") as fh:
        fh.seek(start + length // 2)
        chunk = fh.read(16)
        fh.seek(start + length // 2)
        fh.write(bytes(b ^ 0xFF for b in chunk))
    recs = read_all(open_src(path))
    assert samples(recs).keys() == {"cats/good.png"}
    assert reasons(recs) == {"cats/bad.bmp": "corrupt"}


def test_truncated_tar_gz_is_a_source_error(tmp_path):
    members = [(f"c/{i}.png", os.urandom(4000)) for i in range(10)]
    path = make_tar(tmp_path / "x.tar.gz", members, "w:gz")
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    src = open_src(path)
    with pytest.raises(SourceError, match="x.tar.gz"):
        src.partitions()


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.xz", ".tar.bz2"])
def test_stream_breaking_mid_partition(tmp_path, suffix):
    # Listed while intact, damaged before the worker reads it: the members
    # after the break are corrupt, the ones before are read, nothing raises.
    members = [(f"c/{i:02d}.png", os.urandom(4000)) for i in range(20)]
    path = make_archive(tmp_path, suffix, members)
    src = open_src(path)
    parts = src.partitions()
    assert len(parts) == 1
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    recs = {r.key: r for r in src.read(parts[0])}
    assert len(recs) == 20
    kinds = ["ok" if isinstance(recs[f"c/{i:02d}.png"], Sample) else recs[f"c/{i:02d}.png"].reason for i in range(20)]
    first_bad = kinds.index("corrupt")
    assert kinds == ["ok"] * first_bad + ["corrupt"] * (20 - first_bad)
    if suffix != ".tar.bz2":  # bzip2 decodes whole 900 KB blocks: nothing survives
        assert first_bad > 0
        assert recs["c/00.png"].data == members[0][1]


def test_truncated_plain_tar(tmp_path):
    members = [("c/a.png", PNG), ("c/b.png", os.urandom(5000))]
    path = make_tar(tmp_path / "x.tar", members)
    with open(path, "rb") as fh:
        data = fh.read()
    cut = data.index(members[1][1]) + 1000
    # Listed while intact, truncated before it is read: a corrupt member.
    src = open_src(path)
    parts = src.partitions()
    with open(path, "wb") as fh:
        fh.write(data[:cut])
    recs = {r.key: r for p in parts for r in src.read(p)}
    assert recs["c/a.png"].data == PNG
    assert recs["c/b.png"].reason == "corrupt" and "truncated" in recs["c/b.png"].detail
    # Truncated before listing: the archive as a whole is unreadable.
    with pytest.raises(SourceError, match="x.tar"):
        src.partitions()


@pytest.mark.parametrize("name", ["junk.zip", "junk.tar", "junk.tar.gz", "junk.tgz", "junk.tar.xz"])
def test_not_an_archive(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not an archive at all\n" * 50)
    src = open_src(path)
    with pytest.raises(SourceError, match=name):
        src.partitions()


def test_open_errors(tmp_path):
    with pytest.raises(SourceError, match="missing.zip"):
        open_src(tmp_path / "missing.zip")
    (tmp_path / "data.rar").write_bytes(b"x")
    with pytest.raises(SourceError, match="not an archive name"):
        open_src(tmp_path / "data.rar")
    with pytest.raises(SourceError, match="not a file"):
        open_archive(f"zip:{tmp_path}", SourceSpec(uri="x"), SourceContext())


def test_prefix_overrides_the_name(tmp_path):
    path = make_zip(tmp_path / "data.bin", [("a/x.png", PNG)])
    src = open_archive(f"zip:{path}", SourceSpec(uri=f"zip:{path}"), SourceContext())
    assert src.path == path and src.kind == "zip"
    assert samples(read_all(src)).keys() == {"a/x.png"}


def test_too_large_members(tmp_path):
    big = PNG + b"\0" * 100_000
    for suffix in (".zip", ".tar", ".tgz"):
        path = make_archive(tmp_path, suffix, [("a/big.png", big), ("a/small.png", PNG)])
        src = dataclasses.replace(open_src(path), max_bytes=10_000)
        recs = read_all(src)
        assert reasons(recs) == {"a/big.png": "too_large"}, suffix
        assert samples(recs).keys() == {"a/small.png"}


def test_zip_size_field_that_lies(tmp_path):
    # A member whose central directory claims 100 bytes inflates to 100 KB:
    # it is never read past the claim (and then fails its CRC).
    path = make_zip(tmp_path / "x.zip", [("a/bomb.png", PNG + b"\0" * 100_000), ("a/ok.png", PNG)])
    data = bytearray(open(path, "rb").read())
    cd = data.index(b"PK\x01\x02")  # first central directory record: a/bomb.png
    struct.pack_into("<L", data, cd + 24, 100)  # uncompressed size
    open(path, "wb").write(bytes(data))
    recs = read_all(open_src(path))
    assert reasons(recs) == {"a/bomb.png": "corrupt"}


def test_encrypted_zip_member(tmp_path):
    path = make_zip(tmp_path / "x.zip", [("a/x.png", PNG), ("a/y.png", PNG)], zipfile.ZIP_STORED)
    data = bytearray(open(path, "rb").read())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(sig)  # the first member's headers
        struct.pack_into("<H", data, at + flag_at, struct.unpack_from("<H", data, at + flag_at)[0] | 1)
    open(path, "wb").write(bytes(data))
    recs = read_all(open_src(path))
    assert reasons(recs) == {"a/x.png": "unsupported"}
    assert "encrypted" in recs["a/x.png"].detail


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("suffix", [".zip", ".tar"])
def test_duplicate_names_last_wins(tmp_path, suffix):
    path = make_archive(tmp_path, suffix, [("a/x.png", PNG), ("a/x.png", JPEG)])
    src = open_src(path)
    records = [r for p in src.partitions() for r in src.read(p)]
    assert len(records) == 2
    got = [r for r in records if isinstance(r, Sample)]
    assert len(got) == 1 and got[0].data == JPEG
    assert [r.reason for r in records if isinstance(r, Rejection)] == ["unsupported"]


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_csv_labels(tmp_path, suffix):
    path = make_archive(tmp_path, suffix, [("x/1.png", PNG), ("x/2.png", PNG), ("top.png", PNG)])
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,label\nx/1.png,zebra\n./top.png,lion\nmissing.png,lion\n../out.png,x\n")
    recs = read_all(open_src(path, labels=str(csv_path)))
    assert {k: s.label for k, s in samples(recs).items()} == {"x/1.png": "zebra", "x/2.png": None, "top.png": "lion"}
    assert reasons(recs) == {"missing.png": "corrupt", "../out.png": "unsafe_path"}
    # The context's CSV is used when the spec has none.
    recs = read_all(open_src(path, ctx=SourceContext(labels_csv=str(csv_path))))
    assert samples(recs)["x/1.png"].label == "zebra"


def test_bad_labels_csv(tmp_path):
    path = make_zip(tmp_path / "x.zip", [("a.png", PNG)])
    csv_path = tmp_path / "lab.csv"
    csv_path.write_text("path,category\na.png,b\n")
    with pytest.raises(SourceError, match="lab.csv"):
        open_src(path, labels=str(csv_path))


def test_partitions_sorted_and_picklable(tmp_path):
    n = 2 * PARTITION_SIZE + 10
    names = [f"c{i % 4}/{i:04d}.png" for i in range(n)]
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    path = make_zip(tmp_path / "x.zip", [(name, PNG) for name in shuffled], zipfile.ZIP_STORED)
    src = open_src(path)
    parts = src.partitions()
    # Random access: equal partitions, as many as the workers can share.
    assert len(parts) == min(PARALLEL_PARTITIONS, n // MIN_PARTITION_ITEMS)
    assert max(len(p.items) for p in parts) - min(len(p.items) for p in parts) <= 1
    assert [e.key for p in parts for e in p.items] == sorted(names)
    assert open_src(path).partitions() == parts
    clone = pickle.loads(pickle.dumps(src))
    part = pickle.loads(pickle.dumps(parts[2]))
    assert [r.key for r in clone.read(part)] == [e.key for e in parts[2].items]


def test_compressed_tar_partitions_follow_the_stream(tmp_path):
    n = 2 * PARTITION_SIZE + 10
    names = [f"c/{(i * 7919) % n:04d}.png" for i in range(n)]  # not in sorted order
    path = make_tar(tmp_path / "x.tgz", [(name, PNG) for name in names], "w:gz")
    parts = open_src(path).partitions()
    # A stream is read from its start by every partition: as few as the size allows.
    assert [len(p.items) for p in parts] == [n // 3] * 3
    assert [e.key for p in parts for e in p.items] == names
    recs = read_all(open_src(path))
    assert len(samples(recs)) == n


def test_fingerprint(tmp_path):
    path = make_zip(tmp_path / "x.zip", [("a.png", PNG)])
    src = open_src(path)
    fp = src.fingerprint()
    assert fp == open_src(path).fingerprint()
    make_zip(tmp_path / "x.zip", [("a.png", PNG), ("b.png", PNG)])
    assert src.fingerprint() != fp


# ---------------------------------------------------------------- decompression limits (issue 15)


def _overlapping_zip(path, copies: int, size: int) -> None:
    """A zip whose central directory lists ``copies`` entries that all point
    at one local header and one compressed stream (the overlapping-entry
    bomb layout)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m00.bmp", b"\0" * size)
    data = buf.getvalue()
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<II", data[eocd + 12:eocd + 20])
    central = data[cd_offset:cd_offset + cd_size]
    entries = [central.replace(b"m00.bmp", f"m{i:02d}.bmp".encode()) for i in range(copies)]
    body = data[:cd_offset] + b"".join(entries)
    end = data[eocd:eocd + 22]
    end = end[:8] + struct.pack("<HHII", copies, copies, len(central) * copies, cd_offset) + end[20:]
    with open(path, "wb") as fh:
        fh.write(body + end)


def test_overlapping_zip_entries_are_rejected_unread(tmp_path) -> None:
    path = tmp_path / "bomb.zip"
    _overlapping_zip(path, copies=50, size=4 << 20)
    records = read_all(open_src(path))
    assert len(records) == 50
    assert all(r.reason == "decompression_bomb" and "overlaps" in r.detail for r in records.values())


def test_a_member_over_the_ratio_limit_is_a_decompression_bomb(tmp_path) -> None:
    path = tmp_path / "ratio.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("flat.bmp", b"\0" * (20 << 20))  # ~1000x
        zf.writestr("ok.png", _png_bytes())
    records = read_all(open_src(path))
    assert records["flat.bmp"].reason == "decompression_bomb" and "over 100x" in records["flat.bmp"].detail
    assert isinstance(records["ok.png"], Sample)


def test_a_tar_stream_inflating_past_its_budget_is_refused(tmp_path, monkeypatch) -> None:
    import gandata.sources.archive as archive

    monkeypatch.setattr(archive, "TOTAL_FLOOR_BYTES", 1 << 20)  # the 1 GiB floor, scaled down for the test
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for i in range(4):
            info = tarfile.TarInfo(f"z{i}.bmp")
            info.size = 2 << 20
            tf.addfile(info, io.BytesIO(b"\0" * info.size))
    with pytest.raises(SourceError, match="inflates past"):
        open_src(path).partitions()


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()
