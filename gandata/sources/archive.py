"""Archive source: zip and tar (plain, .gz/.tgz, .bz2, .xz) read in place.

Members are read straight from the archive and never extracted, so a hostile
archive cannot write anywhere. The label convention is the folder source's:
the first-level folder of a member is its class, members at the root are
unlabeled, or labels come from a ``path,label`` CSV with paths relative to the
archive root.

Member names are normalised for keys (``./cats/a.png`` -> ``cats/a.png``); the
locator keeps the stored name: ``f"{archive}!{member}"``.

What ``read`` refuses:

- names that are absolute, have a drive letter, a ``..`` part, a backslash or
  a NUL: ``unsafe_path`` (checked before anything else);
- tar symbolic links, hard links, devices, FIFOs and sparse files, zip
  symbolic links and encrypted zip members: ``unsupported``;
- hidden files and folders: ``hidden``, one rejection per hidden folder;
- members declared larger than ``MAX_FILE_BYTES``: ``too_large`` unread (zip
  members are also read at most one byte past the limit, against a size field
  that lies);
- a member that fails to decompress or check (CRC, truncated data):
  ``corrupt``; when a compressed tar stream breaks, every member after the
  break in that partition is ``corrupt`` too, since nothing past it can be
  read;
- a name used by several members: the last one is read (as tar and unzip
  would extract it) and the earlier ones are ``unsupported``;
- a path listed in the labels CSV and missing from the archive: ``corrupt``.

Directories are ignored. A file that is not a readable archive at all is a
SourceError from ``partitions()``.

Partitions: zip and plain tar members are cut into partitions of
``PARTITION_SIZE`` by sorted name, and read by random access (zip central
directory; tar data offsets recorded while listing). A compressed tar cannot be
read from the middle: every partition decompresses the stream from the start
up to its own members. So its partitions are runs of consecutive members in
archive order, at most ``MAX_STREAM_PARTITIONS`` of them, which bounds the
repeated decompression while still giving workers something to share.
"""

from __future__ import annotations

import hashlib
import lzma
import math
import os
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Iterator, NamedTuple, Sequence

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.base import Partition, SourceContext
from gandata.sources.folder import (
    MAX_FILE_BYTES,
    PARALLEL_PARTITIONS,
    PARTITION_SIZE,
    SNIFF_BYTES,
    LabelsTable,
    has_image_extension,
    label_from_layout,
    labels_path,
    load_labels_csv,
    not_an_image_detail,
    partition_chunks,
    sniff_image,
    strip_scheme,
)

# File name endings -> archive kind (longest first where it matters).
ARCHIVE_SUFFIXES: dict[str, str] = {
    ".zip": "zip",
    ".tar": "tar", ".tar.gz": "tar", ".tgz": "tar", ".tar.bz2": "tar", ".tbz2": "tar", ".tbz": "tar",
    ".tar.xz": "tar", ".txz": "tar",
}
# See the module docstring: a compressed tar split N ways is decompressed
# about N/2 times over in total.
MAX_STREAM_PARTITIONS = 16
# Decompression limits. A zip member may inflate to at most MAX_RATIO times
# its compressed size (members under RATIO_FLOOR_BYTES are exempt: small
# files compress oddly); photographs barely compress, so only bombs and
# blank bitmaps reach it. A whole archive may inflate to at most MAX_RATIO
# times its own size (at least TOTAL_FLOOR_BYTES): overlapping zip entries
# and gzip bombs stop there instead of inflating gigabytes.
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 16 << 20
TOTAL_FLOOR_BYTES = 1 << 30

# Everything the archive modules raise for damaged data. zipfile and tarfile
# let the underlying decompressor's errors through.
_DATA_ERRORS = (
    zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError,
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_GZIP, _BZIP2, _XZ = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"


class ArchiveEntry(NamedTuple):
    """One item of an archive partition: what to read, or the verdict
    already reached while listing."""

    key: str          # normalised name (the stored name when it is unsafe)
    member: str       # the name as stored; "" for labels-CSV-only entries
    offset: int       # zip: local header offset; tar: header offset in the tar stream
    data_offset: int  # plain tar: where the data starts; -1 when not random-access
    size: int
    reason: str | None = None
    detail: str = ""


def unsafe_name_problem(name: str) -> str | None:
    """Why a member name could escape the extraction root, or None."""
    if not name:
        return "empty name"
    if "\x00" in name:
        return "NUL character in the name"
    if "\\" in name:
        # Windows tools read a backslash as a separator: a\..\..\x climbs out.
        return "backslash in the name"
    if name.startswith("/"):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter"
    if ".." in name.split("/"):
        return "'..' in the path"
    return None


def normalize_member(name: str) -> str:
    """``./a//b/`` -> ``a/b``; ``""`` for the archive root itself."""
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def archive_kind(path: str) -> str | None:
    """'zip' or 'tar' from a file name, or None."""
    lower = path.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return ARCHIVE_SUFFIXES[suffix]
    return None


def _overlapping(infos: Sequence[zipfile.ZipInfo]) -> set[int]:
    """Header offsets of zip members whose data overlaps the next member's
    header: the layout of overlapping-entry zip bombs, where many entries
    share one compressed stream. The local header is 30 bytes plus the name
    (its extra field may differ from the central one; not counted)."""
    files = sorted((zi for zi in infos if not zi.is_dir()), key=lambda zi: zi.header_offset)
    out: set[int] = set()
    for zi, nxt in zip(files, files[1:]):
        end = zi.header_offset + 30 + len(zi.orig_filename.encode("utf-8", "surrogateescape")) + zi.compress_size
        if end > nxt.header_offset:
            out.update((zi.header_offset, nxt.header_offset))
    return out


def _tar_is_compressed(path: str) -> bool:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    return magic.startswith((_GZIP, _BZIP2, _XZ))


@dataclass
class ArchiveSource:
    """Images in a zip or tar archive (see the module docstring)."""

    uri: str
    path: str
    kind: str  # "zip" or "tar"
    labels_csv: str | None = None
    max_bytes: int = MAX_FILE_BYTES
    partition_size: int = PARTITION_SIZE

    # ---------------------------------------------------------------- helpers

    def _check_file(self) -> os.stat_result:
        try:
            st = os.stat(self.path)
        except OSError:
            raise SourceError(f"source {self.path}: no such archive file") from None
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(f"source {self.path}: not a file (a folder is read with folder:PATH)")
        return st

    def _labels(self) -> LabelsTable | None:
        if self.labels_csv is None:
            return None
        return load_labels_csv(self.labels_csv, self.uri)

    def _locator(self, member: str) -> str:
        return f"{self.path}!{member}"

    def _reject(self, entry: ArchiveEntry, reason: str, detail: str) -> Rejection:
        return Rejection(
            key=entry.key, locator=self._locator(entry.member or entry.key), reason=reason, detail=detail, source=self.uri
        )

    def _bad_archive(self, exc: BaseException) -> SourceError:
        what = "zip" if self.kind == "zip" else "tar"
        return SourceError(f"source {self.path}: not a readable {what} archive ({exc})")

    # ---------------------------------------------------------------- listing

    def _raw_members(self) -> tuple[list[tuple[str, int, int, int, str | None, str, str]], bool]:
        """(stored name, offset, data offset, size, verdict reason, detail,
        type) per member, and whether the archive must be read as a stream."""
        self._check_file()
        out = []
        if self.kind == "zip":
            try:
                with zipfile.ZipFile(self.path) as zf:
                    infos = zf.infolist()
            except (*_DATA_ERRORS, NotImplementedError) as exc:
                raise self._bad_archive(exc) from None
            overlapping = _overlapping(infos)
            budget = max(MAX_RATIO * os.path.getsize(self.path), TOTAL_FLOOR_BYTES)
            declared = 0
            for zi in infos:
                mode = zi.external_attr >> 16
                kind = "dir" if zi.is_dir() else "file"
                reason, detail = None, ""
                if stat.S_ISLNK(mode):
                    kind, reason, detail = "other", "unsupported", "symbolic link (not followed)"
                elif kind == "file" and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                    kind, reason, detail = "other", "unsupported", "not a regular file"
                elif zi.flag_bits & 0x1:
                    reason, detail = "unsupported", "encrypted member"
                elif kind == "file" and zi.header_offset in overlapping:
                    reason, detail = "decompression_bomb", "its data overlaps another member's (a zip bomb layout); not read"
                elif kind == "file" and zi.file_size > max(MAX_RATIO * zi.compress_size, RATIO_FLOOR_BYTES):
                    reason, detail = "decompression_bomb", (
                        f"declares {zi.file_size} bytes from {zi.compress_size} compressed (over {MAX_RATIO}x); not read")
                elif kind == "file" and zi.file_size <= MAX_FILE_BYTES:
                    declared += zi.file_size
                    if declared > budget:
                        reason, detail = "decompression_bomb", (
                            f"the archive's members inflate past {budget} bytes ({MAX_RATIO}x the archive); not read")
                # orig_filename: zipfile cuts names at a NUL; the check must see it.
                out.append((zi.orig_filename, zi.header_offset, -1, zi.file_size, reason, detail, kind))
            return out, False
        budget = max(MAX_RATIO * os.path.getsize(self.path), TOTAL_FLOOR_BYTES)
        members = []
        try:
            stream = _tar_is_compressed(self.path)
            with tarfile.open(self.path, "r:*") as tf:
                # Listed one at a time: a gzip bomb stops at the budget
                # instead of being inflated to its end.
                for m in tf:
                    if m.offset_data + m.size > budget:
                        raise SourceError(
                            f"source {self.path}: the archive inflates past {budget} bytes ({MAX_RATIO}x its size); "
                            "refused as a decompression bomb"
                        )
                    members.append(m)
        except _DATA_ERRORS as exc:
            raise self._bad_archive(exc) from None
        for m in members:
            reason, detail, kind = None, "", "file"
            if m.isdir():
                kind = "dir"
            elif m.issym():
                kind, reason, detail = "other", "unsupported", f"symbolic link to {m.linkname!r} (not followed)"
            elif m.islnk():
                kind, reason, detail = "other", "unsupported", f"hard link to {m.linkname!r} (not followed)"
            elif m.ischr() or m.isblk() or m.isfifo():
                kind, reason, detail = "other", "unsupported", "device or FIFO, not a file"
            elif m.issparse():
                reason, detail = "unsupported", "sparse file"
            elif not m.isreg():
                kind, reason, detail = "other", "unsupported", f"tar member of type {m.type!r}"
            out.append((m.name, m.offset, -1 if stream else m.offset_data, m.size, reason, detail, kind))
        return out, stream

    def _entries(self, labels: LabelsTable | None) -> tuple[list[ArchiveEntry], bool]:
        raw, stream = self._raw_members()
        entries: list[ArchiveEntry] = []
        hidden: dict[str, list] = {}  # hidden folder key -> [first offset, count]
        by_key: dict[str, int] = {}  # key -> index in entries of its current copy
        present: set[str] = set()
        for name, offset, data_offset, size, reason, detail, kind in raw:
            problem = unsafe_name_problem(name)
            if problem is not None:
                entries.append(ArchiveEntry(name, name, offset, data_offset, size, "unsafe_path", problem))
                continue
            key = normalize_member(name)
            if not key:
                continue  # the root folder entry ("./")
            present.add(key)
            if kind == "dir":
                continue
            parts = key.split("/")
            at = next((i for i, p in enumerate(parts) if p.startswith(".")), None)
            if at is not None and at < len(parts) - 1:
                folder = "/".join(parts[: at + 1])
                hidden.setdefault(folder, [offset, 0])[1] += 1
                continue
            if at is not None:
                reason, detail = "hidden", "hidden file"
            elif reason is None and size > self.max_bytes:
                reason, detail = "too_large", f"{size} bytes, over the {self.max_bytes}-byte limit (not read)"
            if key in by_key:
                # Same name twice: the later copy wins, as when extracting.
                old = entries[by_key[key]]
                entries[by_key[key]] = old._replace(
                    reason="unsupported", detail="another member has the same name; the last one is read"
                )
            by_key[key] = len(entries)
            entries.append(ArchiveEntry(key, name, offset, data_offset, size, reason, detail))
        for folder, (offset, count) in hidden.items():
            entries.append(ArchiveEntry(folder, folder + "/", offset, -1, 0, "hidden", f"hidden folder ({count} members not read)"))
        if labels is not None:
            end = 1 << 62  # after every member in archive order
            for rel in labels.labels:
                if rel not in present:
                    entries.append(ArchiveEntry(rel, "", end, -1, 0, "corrupt", f"listed in the labels CSV {labels.path} but missing"))
            for rel in labels.unsafe:
                entries.append(ArchiveEntry(rel, "", end, -1, 0, "unsafe_path", f"listed in the labels CSV {labels.path} with a path outside the archive"))
        return entries, stream

    def partitions(self) -> Sequence[Partition]:
        """Partitions of ArchiveEntry items (see the module docstring)."""
        entries, stream = self._entries(self._labels())
        if stream:
            entries.sort(key=lambda e: (e.offset, e.key))
            size = max(self.partition_size, math.ceil(len(entries) / MAX_STREAM_PARTITIONS))
            # Each partition of a compressed stream decompresses from the start:
            # no more partitions than the size needs.
            min_partitions = 1
        else:
            entries.sort(key=lambda e: (e.key, e.offset))
            size = self.partition_size
            min_partitions = PARALLEL_PARTITIONS
        return partition_chunks(
            entries, size, lambda chunk: f"{self.path}: {chunk[0].key} .. {chunk[-1].key} ({len(chunk)} members)",
            min_partitions=min_partitions,
        )

    # ---------------------------------------------------------------- reading

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        """One Sample or Rejection per item of the partition."""
        labels = self._labels()
        entries: list[ArchiveEntry] = list(partition.items)
        self._check_file()
        if self.kind == "zip":
            yield from self._read_zip(entries, labels)
        elif any(e.reason is None and e.data_offset < 0 for e in entries):
            yield from self._read_tar_stream(entries, labels)
        else:
            yield from self._read_tar_direct(entries, labels)

    def _finish(self, entry: ArchiveEntry, fh: IO[bytes], limit: int, labels: LabelsTable | None) -> Sample | Rejection:
        """Read a member from ``fh`` (at most ``limit`` bytes), sniffing it
        first when its name is not an image's."""
        sniff = not has_image_extension(entry.key)
        if sniff:
            # Peeked, not read: head + rest would hold the member twice. A
            # short peek (a buffer boundary) leaves the sniff to the data.
            head = fh.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(fh, "peek") else b""
            if len(head) >= min(SNIFF_BYTES, limit, entry.size):
                if not sniff_image(head):
                    return self._reject(entry, "unsupported", not_an_image_detail(entry.key))
                sniff = False
        data = fh.read(limit)
        if sniff and not sniff_image(data[:SNIFF_BYTES]):
            return self._reject(entry, "unsupported", not_an_image_detail(entry.key))
        label = labels.labels.get(entry.key) if labels is not None else label_from_layout(entry.key)
        return Sample(key=entry.key, locator=self._locator(entry.member), label=label, data=data, provenance={"origin": entry.key})

    def _read_zip(self, entries: list[ArchiveEntry], labels: LabelsTable | None) -> Iterator[Sample | Rejection]:
        try:
            zf = zipfile.ZipFile(self.path)
        except (*_DATA_ERRORS, NotImplementedError) as exc:
            raise self._bad_archive(exc) from None
        with zf:
            by_offset = {zi.header_offset: zi for zi in zf.infolist()}
            for entry in entries:
                if entry.reason is not None:
                    yield self._reject(entry, entry.reason, entry.detail)
                    continue
                zi = by_offset.get(entry.offset)
                if zi is None:
                    yield self._reject(entry, "corrupt", "member not found when the archive was reopened")
                    continue
                try:
                    # One byte past the limit: a bomb whose size field lies
                    # is caught without inflating it all.
                    ratio_limit = max(MAX_RATIO * zi.compress_size, RATIO_FLOOR_BYTES)
                    with zf.open(zi) as fh:
                        result = self._finish(entry, fh, min(self.max_bytes, ratio_limit) + 1, labels)
                except NotImplementedError as exc:  # compression method zipfile lacks
                    yield self._reject(entry, "unsupported", str(exc))
                    continue
                except RuntimeError as exc:  # encrypted
                    yield self._reject(entry, "unsupported", str(exc))
                    continue
                except _DATA_ERRORS as exc:
                    yield self._reject(entry, "corrupt", f"cannot decompress it ({exc})")
                    continue
                if isinstance(result, Sample) and len(result.data or b"") > self.max_bytes:
                    result = self._reject(entry, "too_large", f"inflates past the {self.max_bytes}-byte limit")
                elif isinstance(result, Sample) and len(result.data or b"") > ratio_limit:
                    result = self._reject(entry, "decompression_bomb", f"inflates past {MAX_RATIO}x its compressed size")
                yield result

    def _read_tar_direct(self, entries: list[ArchiveEntry], labels: LabelsTable | None) -> Iterator[Sample | Rejection]:
        with open(self.path, "rb") as fh:
            for entry in entries:
                if entry.reason is not None:
                    yield self._reject(entry, entry.reason, entry.detail)
                    continue
                try:
                    fh.seek(entry.data_offset)
                    result = self._finish(entry, fh, entry.size, labels)
                except OSError as exc:
                    yield self._reject(entry, "corrupt", f"cannot read it ({exc.strerror or exc})")
                    continue
                if isinstance(result, Sample) and len(result.data or b"") < entry.size:
                    result = self._reject(entry, "corrupt", f"truncated: {len(result.data or b'')} of {entry.size} bytes")
                yield result

    def _read_tar_stream(self, entries: list[ArchiveEntry], labels: LabelsTable | None) -> Iterator[Sample | Rejection]:
        broken: str | None = None
        tf = None
        current: tarfile.TarInfo | None = None
        try:
            try:
                # "r|*": a forward-only stream, so nothing is seeked or cached.
                tf = tarfile.open(self.path, "r|*")
            except _DATA_ERRORS as exc:
                broken = f"the archive cannot be reopened ({exc})"
            for entry in entries:
                if entry.reason is not None:
                    yield self._reject(entry, entry.reason, entry.detail)
                    continue
                if broken is not None:
                    yield self._reject(entry, "corrupt", broken)
                    continue
                try:
                    # Members come in offset order, as the partition lists them.
                    while current is None or current.offset < entry.offset:
                        current = tf.next()
                        if current is None:
                            break
                    if current is None:
                        broken = "the archive ended before this member"
                        yield self._reject(entry, "corrupt", broken)
                        continue
                    if current.offset != entry.offset or not current.isreg():
                        yield self._reject(entry, "corrupt", "member not found when the archive was reopened")
                        continue
                    fh = tf.extractfile(current)
                    result = self._finish(entry, fh, entry.size, labels)
                except _DATA_ERRORS as exc:
                    broken = f"the compressed stream broke ({exc})"
                    yield self._reject(entry, "corrupt", broken)
                    continue
                if isinstance(result, Sample) and len(result.data or b"") < entry.size:
                    result = self._reject(entry, "corrupt", f"truncated: {len(result.data or b'')} of {entry.size} bytes")
                yield result
        finally:
            if tf is not None:
                tf.close()

    # ---------------------------------------------------------------- metadata

    def class_names(self) -> list[str] | None:
        """None: the pipeline sorts the class names it finds."""
        return None

    def fingerprint(self) -> str:
        """sha256 over the archive's size and mtime_ns, its kind, the labels
        CSV content and the size limit (hashing the content would mean reading
        the whole archive on every run)."""
        st = self._check_file()
        labels = self._labels()
        h = hashlib.sha256()
        h.update(f"gandata.archive/1\0{self.kind}\0{st.st_size}\0{st.st_mtime_ns}\0max_bytes={self.max_bytes}\0".encode())
        h.update(f"labels={labels.digest if labels is not None else '-'}".encode())
        return h.hexdigest()


def open_archive(uri: str, spec: SourceSpec, ctx: SourceContext) -> ArchiveSource:
    """The archive source for ``FILE.zip``, ``FILE.tar[.gz|.bz2|.xz]``,
    ``FILE.tgz`` (kind from the name) or ``zip:FILE`` / ``tar:FILE`` (kind from
    the prefix). SourceError for an unknown kind, a missing file or an
    unusable labels CSV; a damaged archive is found by ``partitions()``."""
    kind = None
    path = uri
    for prefix in ("zip", "tar"):
        if uri.startswith(prefix + ":"):
            kind, path = prefix, strip_scheme(uri, (prefix,))
            break
    else:
        path = strip_scheme(uri, ("file",))
        kind = archive_kind(path)
        if kind is None:
            names = ", ".join(sorted(ARCHIVE_SUFFIXES))
            raise SourceError(f"source {path}: not an archive name (expected {names}, or a zip:/tar: prefix)")
    source = ArchiveSource(uri=uri, path=path, kind=kind, labels_csv=labels_path(spec, ctx))
    source._check_file()
    source._labels()
    return source
