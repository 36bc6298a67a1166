"""Local folder source: an ImageFolder tree, or labels from a CSV.

Layout (the torchvision ImageFolder convention)::

    root/cats/a.png          -> label "cats"
    root/cats/2019/b.jpg     -> label "cats" (deeper folders keep the first-level class)
    root/c.png               -> unlabeled (label None)

With a labels CSV (``SourceSpec.labels``, else ``SourceContext.labels_csv``)
the folder names mean nothing: labels come from ``path,label`` rows (header
optional; paths relative to the folder root with ``/`` separators) and files
not listed are unlabeled.

Splits (option ``layout``: ``?layout=auto|classes|splits`` on the URI or
``params.layout``; default ``auto``). In the split layout the first-level
folder is the split and the second-level folder the class, which is what
``gandata export --to folder`` writes for a dataset with several splits::

    root/train/cats/a.png    -> split "train", label "cats"
    root/validation/cats/b.png -> split "val" (``validation`` is val's HF name)
    root/test/c.png          -> split "test", unlabeled
    root/d.png               -> no split (the build's --val-fraction decides), unlabeled

``auto`` takes the split layout when the root holds at least one folder and
every non-hidden folder at its top level is named ``train``, ``val``,
``validation`` or ``test`` (any case; files there do not count), and no labels
CSV is given; otherwise the classes layout above. A folder whose classes
really are named so is read with ``layout=classes``; ``layout=splits`` refuses
a top-level folder that is not a split name. Deciding takes one listing of
the root, never a walk of the tree.

Class order: a ``classes.txt`` at the root (one class name per line, UTF-8,
exactly as its folder is named; blank lines skipped) gives the label ids in its order; classes found but not listed follow,
sorted. ``gandata export --to folder`` writes it, so a round trip keeps the
label ids. Without it the classes are sorted by name (ImageFolder's order).

What ``read`` refuses, one record per listed entry:

- hidden files and folders (name starts with ``.``): ``hidden``; a hidden
  folder is not entered and gives one rejection for the whole folder;
- a symbolic link to a file outside the root: ``unsafe_path``; a symbolic
  link to a folder is not followed (loops): ``unsupported``; a dangling link:
  ``corrupt``;
- a file without an image extension whose first bytes do not look like an
  image (``gandata.image.decode.looks_like_image``): ``unsupported``;
- a file larger than ``MAX_FILE_BYTES``: ``too_large`` (not read);
- a path listed in the labels CSV that does not exist: ``corrupt`` with the
  detail "listed in the labels CSV but missing" -- the file was expected and
  is not there, which is a data problem to report, not a reason to stop the
  build; a CSV path that leaves the root (``..``, absolute): ``unsafe_path``.

Files with an image extension are yielded as they are, even when empty: the
decoder is the one that knows they are corrupt.

This module also holds the helpers the archive source shares (extensions,
limits, the labels CSV reader).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import math
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Sequence
from urllib.parse import parse_qsl

from gandata.config import SourceSpec
from gandata.dataset.splits import (
    CLASSES_FILE,
    MAX_CLASSES_FILE_BYTES,
    SPLIT_FOLDERS,
    is_folder_name,
    split_of_folder,
)
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.base import Partition, SourceContext

# Extensions yielded without sniffing (lower case, with the dot).
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".tga",
    # Decoded when Pillow has the plugin, else rejected naming the format.
    ".avif", ".jp2", ".j2k", ".jpf", ".jpx", ".qoi", ".heic", ".heif",
})
# Larger inputs are refused unread: no GAN training image needs more, and a
# worker holding several such files at once could run out of memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
# Files (or archive members) per partition: small enough that a worker's
# staged partition stays small, large enough that per-task overhead is noise.
PARTITION_SIZE = 256
# Random-access sources are cut into at least this many partitions (of at
# least MIN_PARTITION_ITEMS items each) of equal size: with 5 partitions of 256
# for 1,200 files, 2 workers finish 3 and 2 partitions and the second idles for
# a third of the build; with 32 the last partition, which one process finishes
# alone, is a thirty-second of the work.
PARALLEL_PARTITIONS = 32
MIN_PARTITION_ITEMS = 32
# Bytes handed to looks_like_image for files without an image extension; every
# supported format announces itself in its first few bytes.
SNIFF_BYTES = 4096

_CSV_PATH_COLUMNS = ("path", "file", "filename")
_CSV_LABEL_COLUMNS = ("label", "class")


# --------------------------------------------------------------------------
# Helpers shared with the archive source
# --------------------------------------------------------------------------


def strip_scheme(uri: str, schemes: Sequence[str]) -> str:
    """The path a URI names, without one of ``schemes`` (``folder:``,
    ``file://`` ...)."""
    for scheme in schemes:
        prefix = scheme + ":"
        if uri.startswith(prefix):
            rest = uri[len(prefix):]
            # file:///abs/path and file://./rel: drop the empty authority.
            if rest.startswith("//"):
                rest = rest[2:]
            return rest
    return uri


def extension_of(name: str) -> str:
    """The lower-case extension of a file name (``".png"``), or ``""``."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def has_image_extension(name: str) -> bool:
    return extension_of(name) in IMAGE_EXTENSIONS


def not_an_image_detail(name: str) -> str:
    ext = extension_of(name)
    what = f"extension {ext!r}" if ext else "no extension"
    return f"not an image ({what}, and the content is not a known image format)"


def sniff_image(head: bytes) -> bool:
    """Whether the first bytes of a file look like an image."""
    # Imported here: decode pulls in Pillow and numpy, which listing a source
    # (in the parent process) never needs.
    from gandata.image.decode import looks_like_image

    return bool(looks_like_image(head))


def label_from_layout(key: str) -> str | None:
    """ImageFolder label of a relative POSIX path: its first-level folder."""
    head, sep, _ = key.partition("/")
    return head if sep else None


LAYOUTS = ("auto", "classes", "splits")


def split_from_layout(key: str) -> tuple[str | None, str]:
    """(split, the rest of the path) of a relative POSIX path in the split
    layout: ``train/cats/a.png`` -> ("train", "cats/a.png"); a file at the
    root has no split."""
    head, sep, rest = key.partition("/")
    return (split_of_folder(head), rest) if sep else (None, key)


def resolve_layout(root: str, layout: str, uri: str, has_labels_csv: bool) -> str:
    """``classes`` or ``splits`` for the folder at ``root`` (see the module
    docstring); SourceError for an unknown layout or a ``splits`` root with a
    folder that is not a split name."""
    if layout not in LAYOUTS:
        raise SourceError(f"source {uri}: layout={layout!r} must be one of {', '.join(LAYOUTS)}")
    if layout == "classes" or (layout == "auto" and has_labels_csv):
        return "classes"
    try:
        with os.scandir(root) as it:
            folders = [e.name for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    except OSError as exc:
        raise SourceError(f"source {root}: cannot list the folder ({exc.strerror or exc})") from None
    others = sorted(name for name in folders if split_of_folder(name) is None)
    if layout == "splits":
        names = ", ".join(SPLIT_FOLDERS)
        if others:
            shown = ", ".join(repr(n) for n in others[:5]) + (" ..." if len(others) > 5 else "")
            raise SourceError(f"source {uri}: layout=splits, but the top-level folder(s) {shown} are not split names ({names})")
        if not folders:
            raise SourceError(f"source {uri}: layout=splits, but it has no split folder ({names}) at its top level")
        return "splits"
    return "splits" if folders and not others else "classes"


def folder_options(uri: str, path: str, spec: SourceSpec) -> tuple[str, dict[str, str]]:
    """The folder path of a URI and its options: ``spec.params`` overridden
    by a ``?key=value`` query. A ``?`` is a query only when the whole path is
    not itself a folder (folder names may hold ``?``)."""
    options = dict(spec.params)
    if "?" in path and not os.path.isdir(path):
        path, _, query = path.rpartition("?")
        try:
            options.update(parse_qsl(query, keep_blank_values=True, strict_parsing=True))
        except ValueError:
            raise SourceError(f"source {uri}: cannot parse the query {query!r} (expected layout=auto|classes|splits)") from None
    unknown = sorted(set(options) - {"layout"})
    if unknown:
        raise SourceError(f"source {uri}: unknown option(s) {', '.join(unknown)} (known: layout)")
    return path, options


def partition_chunks(items: Sequence, size: int, describe, min_partitions: int = 1) -> list[Partition]:
    """Cut ``items`` into consecutive partitions of at most ``size`` items and
    equal length (within one), at least ``min_partitions`` of them when there
    are MIN_PARTITION_ITEMS items for each; ``describe(chunk)`` names one.

    Sources that ask for parallel partitions (``min_partitions`` > 1) get a
    tapered end: the items of the last two partitions are cut again into
    halves and quarters (1/2, 1/2, 1/2, 1/4, 1/4 of a partition). Whichever
    process takes the last partition finishes it alone, so the tail of the
    stage is a quarter partition instead of a whole one (at 6,000 images on
    2 workers about 35 ms instead of 140).

    The cut depends only on the items, never on the number of workers, so
    staging (and resume) is the same whatever the parallelism.
    """
    n = len(items)
    count = max(math.ceil(n / size), min(min_partitions, n // MIN_PARTITION_ITEMS), 1 if n else 0)
    bounds = [index * n // count for index in range(count + 1)] if count else [0]
    if min_partitions > 1 and count >= 2 and n // count >= 4 * MIN_PARTITION_ITEMS:
        start = bounds[-3]
        bounds = bounds[:-3] + [start + (n - start) * eighths // 8 for eighths in (0, 2, 4, 6, 7, 8)]
    out = []
    for index, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        chunk = tuple(items[a:b])
        out.append(Partition(index=index, items=chunk, description=describe(chunk), num_inputs=len(chunk)))
    return out


@dataclass
class LabelsTable:
    """A parsed labels CSV: normalised relative path -> label (None when the
    label cell is empty), the rows whose path leaves the root, and a digest
    of the file for fingerprints."""

    path: str
    labels: dict[str, str | None]
    unsafe: tuple[str, ...]
    digest: str


def normalize_relative(path: str) -> str | None:
    """A relative POSIX path without ``.`` and empty parts; None when it is
    absolute, has a drive letter or climbs out with ``..``."""
    if path.startswith("/") or (len(path) >= 2 and path[1] == ":" and path[0].isalpha()):
        return None
    norm = posixpath.normpath(path)
    if norm == "." or norm == ".." or norm.startswith("../"):
        return None
    return norm


# Per-process cache: workers read one partition after another, and parsing a
# million-row CSV for each would dwarf the work. Keyed by (size, mtime_ns) so
# an edited file is read again.
_LABELS_CACHE: dict[str, tuple[tuple[int, int], LabelsTable]] = {}
_LABELS_CACHE_MAX = 8


def load_labels_csv(path: str, source: str) -> LabelsTable:
    """Read a ``path,label`` CSV; SourceError naming the file when it cannot
    be read or has no label column."""
    where = f"source {source}: labels file {path}"
    try:
        st = os.stat(path)
        stamp = (st.st_size, st.st_mtime_ns)
        key = os.path.abspath(path)
        cached = _LABELS_CACHE.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise SourceError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(f"{where}: is not UTF-8 text") from None
    labels, unsafe = _parse_labels(text, where)
    table = LabelsTable(path=path, labels=labels, unsafe=unsafe, digest=hashlib.sha256(raw).hexdigest())
    if len(_LABELS_CACHE) >= _LABELS_CACHE_MAX:
        _LABELS_CACHE.clear()
    _LABELS_CACHE[key] = (stamp, table)
    return table


def _parse_labels(text: str, where: str) -> tuple[dict[str, str | None], tuple[str, ...]]:
    reader = csv.reader(io.StringIO(text))
    labels: dict[str, str | None] = {}
    unsafe: list[str] = []
    path_col, label_col = 0, 1
    first = True
    try:
        for row in reader:
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if first:
                first = False
                lowered = [c.lower() for c in cells]
                # A header names at least one known column; a data row is a
                # file path, which never is just "path" or "label".
                if any(c in _CSV_PATH_COLUMNS or c in _CSV_LABEL_COLUMNS for c in lowered):
                    path_col = next((lowered.index(c) for c in _CSV_PATH_COLUMNS if c in lowered), -1)
                    label_col = next((lowered.index(c) for c in _CSV_LABEL_COLUMNS if c in lowered), -1)
                    if label_col < 0:
                        raise SourceError(f"{where}: no 'label' column in the header {','.join(cells)!r}")
                    if path_col < 0:
                        raise SourceError(f"{where}: no 'path' column in the header {','.join(cells)!r}")
                    continue
            line = reader.line_num
            if len(cells) <= max(path_col, label_col):
                raise SourceError(f"{where}: line {line} has no label column (expected path,label)")
            rel, label = cells[path_col], cells[label_col] or None
            if not rel:
                raise SourceError(f"{where}: line {line} has an empty path")
            norm = normalize_relative(rel)
            if norm is None:
                unsafe.append(rel)
                continue
            if norm in labels and labels[norm] != label:
                raise SourceError(
                    f"{where}: line {line} gives {rel!r} the label {label!r}, "
                    f"but an earlier line gave it {labels[norm]!r}"
                )
            labels[norm] = label
    except csv.Error as exc:
        raise SourceError(f"{where}: line {reader.line_num} is not valid CSV ({exc})") from None
    if first:
        raise SourceError(f"{where}: has no rows")
    return labels, tuple(dict.fromkeys(unsafe))


def labels_path(spec: SourceSpec, ctx: SourceContext) -> str | None:
    """The labels CSV of a folder-like source: the spec's, else the build's."""
    return spec.labels if spec.labels is not None else ctx.labels_csv


# --------------------------------------------------------------------------
# The folder source
# --------------------------------------------------------------------------


def _read_at_most(fh: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes from an unbuffered file (fewer only at its end)."""
    chunks = []
    while size > 0:
        chunk = fh.read(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Opening a FIFO swapped in after the listing must not block the worker.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class _Escaped(Exception):
    """A path component turned out to be a symbolic link when opened."""


class _Beneath:
    """Opens files beneath a folder's root, one path component at a time
    relative to the root's descriptor with O_NOFOLLOW, so that a symbolic
    link swapped in after the listing (for the file or any folder on its way)
    cannot lead outside the root.

    The descriptor of the last folder reached is kept: a partition lists its
    files in order, so most share their folder with the one before, and
    re-walking it cost four system calls per file. Use as a context manager
    (the kept descriptor is closed on exit)."""

    def __init__(self, root_real: str) -> None:
        self.root_real = root_real
        self._folder: tuple[str, int] | None = None  # (relative folder, its descriptor)

    def __enter__(self) -> "_Beneath":
        return self

    def __exit__(self, *exc: object) -> None:
        self._forget()

    def _forget(self) -> None:
        if self._folder is not None:
            os.close(self._folder[1])
            self._folder = None

    def open(self, rel: str) -> int:
        """A read-only descriptor of ``root_real/rel``. Raises _Escaped for a
        link on the way, and OSError for anything else."""
        if not _NOFOLLOW or os.open not in os.supports_dir_fd:
            return os.open(os.path.join(self.root_real, rel), os.O_RDONLY | _NONBLOCK)  # no *at() calls here (Windows)
        folder, _, name = rel.rpartition("/")
        if self._folder is None or self._folder[0] != folder:
            self._forget()
            self._folder = (folder, self._open_folder(folder))
        try:
            return os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=self._folder[1])
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Escaped(name) from None
            raise

    def _open_folder(self, folder: str) -> int:
        fd = os.open(self.root_real, os.O_RDONLY | _DIRECTORY)
        try:
            for part in folder.split("/") if folder else []:
                try:
                    child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _Escaped(part) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd


def _inside(root_real: str, target: str) -> bool:
    try:
        return os.path.commonpath([root_real, target]) == root_real
    except ValueError:  # Windows: another drive
        return False


@dataclass
class FolderSource:
    """Images in a local folder tree (see the module docstring)."""

    uri: str
    root: str
    labels_csv: str | None = None
    max_bytes: int = MAX_FILE_BYTES
    partition_size: int = PARTITION_SIZE
    # "classes" or "splits", resolved by open_folder (never "auto" here).
    layout: str = "classes"

    def _check_root(self) -> None:
        if not os.path.isdir(self.root):
            hint = ""
            if os.path.isfile(self.root):
                hint = " (it is a file; use zip:/tar: for an archive)"
            raise SourceError(f"source {self.root}: no such folder{hint}")

    def _labels(self) -> LabelsTable | None:
        if self.labels_csv is None:
            return None
        return load_labels_csv(self.labels_csv, self.uri)

    def _listing(self, labels: LabelsTable | None) -> list[str]:
        """Sorted relative paths of everything ``read`` reports on."""
        self._check_root()
        # A labels CSV kept inside the dataset folder is not an input. Only
        # entries with its name are resolved: realpath costs a syscall per
        # path component.
        skip_name = skip_real = None
        if self.labels_csv is not None:
            skip_name, skip_real = os.path.basename(self.labels_csv), os.path.realpath(self.labels_csv)
        found: list[str] = []
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            full_dir = os.path.join(self.root, rel_dir) if rel_dir else self.root
            try:
                with os.scandir(full_dir) as it:
                    entries = list(it)
            except OSError as exc:
                if not rel_dir:
                    raise SourceError(f"source {self.root}: cannot list the folder ({exc.strerror or exc})") from None
                found.append(rel_dir)  # read() reports it as unreadable
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if entry.name.startswith("."):
                    found.append(rel)  # hidden file, or hidden folder not entered
                elif entry.is_symlink():
                    found.append(rel)  # read() decides: inside the root or not
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.name == skip_name and os.path.realpath(entry.path) == skip_real:
                    continue
                elif not rel_dir and entry.name == CLASSES_FILE and entry.is_file(follow_symlinks=False):
                    continue  # the class order (class_names), not an input
                else:
                    found.append(rel)
        if labels is not None:
            present = set(found)
            for rel in labels.labels:
                if rel not in present and not os.path.lexists(os.path.join(self.root, rel)):
                    found.append(rel)
            found.extend(labels.unsafe)
        return sorted(set(found))

    def partitions(self) -> Sequence[Partition]:
        """Partitions of ``partition_size`` sorted relative paths."""
        items = self._listing(self._labels())
        return partition_chunks(
            items, self.partition_size, lambda chunk: f"{self.root}: {chunk[0]} .. {chunk[-1]} ({len(chunk)} entries)",
            min_partitions=PARALLEL_PARTITIONS,
        )

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        """One Sample or Rejection per item of the partition."""
        labels = self._labels()
        root_real = os.path.realpath(self.root)
        with _Beneath(root_real) as beneath:
            for rel in partition.items:
                yield self._read_one(rel, labels, root_real, beneath)

    def _reject(self, rel: str, reason: str, detail: str) -> Rejection:
        return Rejection(key=rel, locator=os.path.join(self.root, rel), reason=reason, detail=detail, source=self.uri)

    def _read_one(self, rel: str, labels: LabelsTable | None, root_real: str, beneath: _Beneath) -> Sample | Rejection:
        full = os.path.join(self.root, rel)
        if labels is not None and rel in labels.unsafe:
            return self._reject(rel, "unsafe_path", f"listed in the labels CSV {labels.path} with a path outside the folder")
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            if labels is not None and rel in labels.labels:
                return self._reject(rel, "corrupt", f"listed in the labels CSV {labels.path} but missing")
            return self._reject(rel, "corrupt", "the file disappeared after the folder was listed")
        except OSError as exc:
            return self._reject(rel, "corrupt", f"cannot read it ({exc.strerror or exc})")
        name = rel.rsplit("/", 1)[-1]
        is_link = stat.S_ISLNK(st.st_mode)
        if name.startswith("."):
            what = "hidden folder (not entered)" if stat.S_ISDIR(st.st_mode) else "hidden file"
            return self._reject(rel, "hidden", what)
        if stat.S_ISLNK(st.st_mode):
            if not _inside(root_real, os.path.realpath(full)):
                return self._reject(rel, "unsafe_path", "symbolic link to a file outside the folder")
            try:
                st = os.stat(full)
            except OSError:
                return self._reject(rel, "corrupt", "broken symbolic link")
            if stat.S_ISDIR(st.st_mode):
                # Following folder links could loop forever (a link to the root).
                return self._reject(rel, "unsupported", "symbolic link to a folder (not followed)")
        elif stat.S_ISDIR(st.st_mode):
            return self._reject(rel, "unsupported", "folder that could not be listed")
        if not stat.S_ISREG(st.st_mode):
            # Opening a FIFO would block the worker forever.
            return self._reject(rel, "unsupported", "not a regular file (device, FIFO or socket)")
        if st.st_size > self.max_bytes:
            return self._reject(rel, "too_large", f"{st.st_size} bytes, over the {self.max_bytes}-byte limit (not read)")
        # Reads are sized from the stat (asking for max_bytes would allocate
        # that much per file) and go one byte past it, to notice a file that
        # grew since; such a file is read on, to one byte past the limit.
        limit = self.max_bytes + 1
        expected = min(st.st_size + 1, limit)
        # The file is opened again beneath the root (a link inside the folder
        # by its resolved path) and checked once open: what was listed and
        # stat-ed may have been swapped for a link, a FIFO or a device since.
        target = os.path.relpath(os.path.realpath(full), root_real).replace(os.sep, "/") if is_link else rel
        try:
            fd = beneath.open(target)
        except _Escaped:
            return self._reject(rel, "unsafe_path", "a symbolic link was swapped in after the folder was listed (not followed)")
        except OSError as exc:
            return self._reject(rel, "corrupt", f"cannot read it ({exc.strerror or exc})")
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            return self._reject(rel, "unsupported", "not a regular file (device, FIFO or socket)")
        try:
            with os.fdopen(fd, "rb", buffering=0) as fh:
                if has_image_extension(name):
                    data = _read_at_most(fh, expected)
                else:
                    head = _read_at_most(fh, SNIFF_BYTES)
                    if not sniff_image(head):
                        return self._reject(rel, "unsupported", not_an_image_detail(name))
                    data = head + _read_at_most(fh, expected - len(head))
                if st.st_size < len(data) < limit:
                    data += _read_at_most(fh, limit - len(data))
        except OSError as exc:
            return self._reject(rel, "corrupt", f"cannot read it ({exc.strerror or exc})")
        if len(data) > self.max_bytes:
            return self._reject(rel, "too_large", f"grew past the {self.max_bytes}-byte limit while being read")
        split, inner = split_from_layout(rel) if self.layout == "splits" else (None, rel)
        label = (labels.labels.get(rel) if labels is not None else label_from_layout(inner))
        return Sample(key=rel, locator=full, label=label, data=data, provenance={"origin": rel}, split=split)

    def class_names(self) -> list[str] | None:
        """The class order of ``classes.txt`` at the root, else None (the
        pipeline sorts the class names it finds)."""
        text = self._classes_text()
        if text is None:
            return None
        names: list[str] = []
        for number, line in enumerate(text.split("\n"), start=1):
            name = line.rstrip("\r")  # names as the folders spell them: no other stripping
            if not name:
                continue
            if not is_folder_name(name):
                raise SourceError(f"source {self.root}: {CLASSES_FILE} line {number}: {name!r} cannot be a folder's name")
            if name in names:
                raise SourceError(f"source {self.root}: {CLASSES_FILE} line {number}: class {name!r} is listed twice")
            names.append(name)
        return names

    def _classes_text(self) -> str | None:
        """The text of the root's ``classes.txt`` (a regular file, not a
        link), or None when there is none."""
        path = os.path.join(self.root, CLASSES_FILE)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > MAX_CLASSES_FILE_BYTES:
            raise SourceError(f"source {self.root}: {CLASSES_FILE} is {st.st_size} bytes; at most {MAX_CLASSES_FILE_BYTES} are read")
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_CLASSES_FILE_BYTES + 1).decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(f"source {self.root}: {CLASSES_FILE} is not UTF-8 text") from None
        except OSError as exc:
            raise SourceError(f"source {self.root}: cannot read {CLASSES_FILE} ({exc.strerror or exc})") from None

    def fingerprint(self) -> str:
        """sha256 over (relative path, size, mtime_ns) of every listed entry,
        the labels CSV content and the size limit."""
        labels = self._labels()
        h = hashlib.sha256()
        h.update(f"gandata.folder/1\0max_bytes={self.max_bytes}\0".encode())
        h.update(f"labels={labels.digest if labels is not None else '-'}\0".encode())
        if self.layout != "classes":  # the classes layout hashes as it did before layouts existed
            h.update(f"layout={self.layout}\0".encode())
        classes = self._classes_text()
        if classes is not None:  # likewise: only folders with a class order hash one
            h.update(f"classes={hashlib.sha256(classes.encode()).hexdigest()}\0".encode())
        for rel in self._listing(labels):
            full = os.path.join(self.root, rel)
            try:
                st = os.stat(full)
            except OSError:
                try:
                    st = os.lstat(full)
                except OSError:
                    st = None
            size, mtime = (st.st_size, st.st_mtime_ns) if st is not None else (-1, -1)
            # surrogateescape: undecodable file names must still hash.
            h.update(f"{rel}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def open_folder(uri: str, spec: SourceSpec, ctx: SourceContext) -> FolderSource:
    """The folder source for ``PATH``, ``folder:PATH`` or ``file:PATH``
    (``?layout=auto|classes|splits``: see the module docstring).

    Raises SourceError when the path is not a folder, the labels CSV is
    unusable or the layout option is, so that a bad source fails before any
    work starts.
    """
    root, options = folder_options(uri, strip_scheme(uri, ("folder", "file")), spec)
    source = FolderSource(uri=uri, root=root, labels_csv=labels_path(spec, ctx))
    source._check_root()
    source._labels()
    source.class_names()  # a bad classes.txt fails before any work
    source.layout = resolve_layout(root, options.get("layout", "auto"), uri, source.labels_csv is not None)
    return source
