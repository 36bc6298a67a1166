"""The download cache of remote archives (issue 15 weakness): under the
user's cache folder, private, and a cached copy is used only when its size
and SHA-256 still match."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Sample
from gandata.sources.base import SourceContext
from gandata.sources.remote import cache_dir, open_remote

fsspec = pytest.importorskip("fsspec")


def _zip_bytes() -> bytes:
    png = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 10, 10)).save(png, format="PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/x.png", png.getvalue())
    return buf.getvalue()


def test_the_cache_is_the_users_not_a_shared_temp_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GANDATA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == str(tmp_path / "xdg" / "gandata")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == str(tmp_path / "home" / ".cache" / "gandata")


def test_a_tampered_cached_copy_is_downloaded_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GANDATA_CACHE_DIR", str(tmp_path / "cache"))
    fsspec.filesystem("memory").pipe_file("/h15cache/a.zip", _zip_bytes())
    source = open_remote("memory://h15cache/a.zip", SourceSpec("memory://h15cache/a.zip"), SourceContext())
    parts = source.partitions()
    [cached] = [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".zip")]
    assert (tmp_path / "cache" / (cached.name + ".sha256")).exists()
    assert os.stat(tmp_path / "cache").st_mode & 0o077 == 0
    # Same size, other bytes: only the recorded hash can tell.
    data = bytearray(cached.read_bytes())
    data[-30] ^= 0xFF
    cached.write_bytes(bytes(data))
    records = [r for p in parts for r in source.read(p)]
    assert [type(r) for r in records] == [Sample]
    assert cached.read_bytes() == _zip_bytes()


def test_a_cache_folder_others_may_write_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("GANDATA_CACHE_DIR", str(shared))
    fsspec.filesystem("memory").pipe_file("/h15cache/b.zip", _zip_bytes())
    source = open_remote("memory://h15cache/b.zip", SourceSpec("memory://h15cache/b.zip"), SourceContext())
    with pytest.raises(SourceError, match="writable by others"):
        source.partitions()
