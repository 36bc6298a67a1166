"""Folder and archive sources on object storage (any fsspec URL).

``s3://bucket/photos/`` is read like a local folder: every object under the
prefix is an input, its first-level "folder" is its class, objects at the
root are unlabeled. ``s3://bucket/photos.zip`` (or ``.tar[.gz|.bz2|.xz]``,
``.tgz``; or ``zip:URL`` / ``tar:URL``) is an archive, read with the archive
source's rules after a download into a local cache.

Folder objects are listed once by the parent (``partitions``) and fetched by
the workers, one ``cat`` per object, so every worker reads straight from the
store. An archive is downloaded by whichever process needs it first, to
``$GANDATA_CACHE_DIR`` (default: ``$XDG_CACHE_HOME/gandata``, else
``~/.cache/gandata``; a folder only its owner may write), under a name
derived from its URL and version (ETag), with its size and SHA-256 recorded
beside it; a cached copy is used only when both still match, else it is
downloaded again.

What ``read`` refuses (same reason codes as the local folder source): a
hidden object or an object under a hidden "folder" (one rejection per hidden
folder): ``hidden``; an object larger than ``MAX_FILE_BYTES``: ``too_large``
unread; an object without an image extension whose first bytes are not an
image: ``unsupported``; an object that cannot be fetched: ``corrupt``.
Labels CSVs (``--labels``) are not supported for object-store sources yet.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.archive import ArchiveSource, archive_kind
from gandata.sources.base import Partition, SourceContext
from gandata.sources.folder import (
    MAX_FILE_BYTES,
    PARALLEL_PARTITIONS,
    PARTITION_SIZE,
    SNIFF_BYTES,
    has_image_extension,
    label_from_layout,
    not_an_image_detail,
    partition_chunks,
    sniff_image,
)
from gandata.util.remote import filesystem

# A listed entry: (relative key, size in bytes or -1 for a hidden folder, version).
Entry = tuple[str, int, str]


def _version(info: dict[str, Any]) -> str:
    """What changes when an object is rewritten: ETag on S3/GCS, else mtime."""
    for key in ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "last_modified", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


@dataclass
class RemoteFolderSource:
    """Every object under a URL prefix (see the module docstring)."""

    uri: str
    url: str
    max_bytes: int = MAX_FILE_BYTES
    partition_size: int = PARTITION_SIZE

    def _fs(self) -> tuple[Any, str]:
        return filesystem(self.url, option=f"source {self.uri}")

    def _listing(self) -> list[Entry]:
        """Sorted entries; objects under a hidden folder collapse into one."""
        fs, root = self._fs()
        try:
            found = fs.find(root, detail=True)
        except OSError as exc:
            raise SourceError(f"source {self.uri}: cannot list it ({exc})") from None
        entries: dict[str, Entry] = {}
        for key, info in found.items():
            if info.get("type") == "directory" or not key.startswith(root + "/"):
                continue
            rel = key[len(root) + 1:]
            parts = rel.split("/")
            hidden = next((i for i, p in enumerate(parts[:-1]) if p.startswith(".")), None)
            if hidden is not None:
                folder = "/".join(parts[: hidden + 1])
                entries[folder] = (folder, -1, "")
            else:
                entries[rel] = (rel, int(info.get("size") or 0), _version(info))
        if not entries:
            raise SourceError(f"source {self.uri}: no objects under this URL")
        return [entries[k] for k in sorted(entries)]

    def partitions(self) -> Sequence[Partition]:
        """Partitions of ``partition_size`` objects, sorted by key."""
        return partition_chunks(
            self._listing(), self.partition_size,
            lambda chunk: f"{self.url}: {chunk[0][0]} .. {chunk[-1][0]} ({len(chunk)} objects)",
            min_partitions=PARALLEL_PARTITIONS,
        )

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        """One Sample or Rejection per object of the partition."""
        fs, root = self._fs()
        for rel, size, _ in partition.items:
            yield self._read_one(fs, root, rel, size)

    def _reject(self, rel: str, reason: str, detail: str) -> Rejection:
        return Rejection(key=rel, locator=f"{self.url}/{rel}", reason=reason, detail=detail, source=self.uri)

    def _read_one(self, fs: Any, root: str, rel: str, size: int) -> Sample | Rejection:
        name = rel.rsplit("/", 1)[-1]
        if size < 0:
            return self._reject(rel, "hidden", "hidden folder (not entered)")
        if name.startswith("."):
            return self._reject(rel, "hidden", "hidden file")
        if size > self.max_bytes:
            return self._reject(rel, "too_large", f"{size} bytes, over the {self.max_bytes}-byte limit (not read)")
        try:
            data = fs.cat_file(f"{root}/{rel}")
        except OSError as exc:
            return self._reject(rel, "corrupt", f"cannot fetch it ({exc})")
        if len(data) > self.max_bytes:
            return self._reject(rel, "too_large", f"grew past the {self.max_bytes}-byte limit after listing")
        if not has_image_extension(name) and not sniff_image(data[:SNIFF_BYTES]):
            return self._reject(rel, "unsupported", not_an_image_detail(name))
        return Sample(key=rel, locator=f"{self.url}/{rel}", label=label_from_layout(rel), data=data, provenance={"origin": rel})

    def class_names(self) -> list[str] | None:
        """None: the pipeline sorts the class names it finds."""
        return None

    def fingerprint(self) -> str:
        """sha256 over (key, size, ETag or mtime) of every listed object."""
        h = hashlib.sha256()
        h.update(f"gandata.remote-folder/1\0max_bytes={self.max_bytes}\0".encode())
        for rel, size, version in self._listing():
            h.update(f"{rel}\0{size}\0{version}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()


@dataclass
class _CachedArchive(ArchiveSource):
    """An ArchiveSource on a downloaded copy whose locators name the URL."""

    url: str = ""

    def _locator(self, member: str) -> str:
        return f"{self.url}!{member}"


def cache_dir() -> str:
    """Where remote archives are downloaded: $GANDATA_CACHE_DIR, else the
    user's cache folder (never a shared temp folder, where another user could
    plant a file under the expected name)."""
    explicit = os.environ.get("GANDATA_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gandata")


def _private_cache() -> str:
    """The cache folder, created owner-only; SourceError when another user
    owns it or others may write in it."""
    folder = cache_dir()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.stat(folder)
    except OSError as exc:
        raise SourceError(f"cache folder {folder}: cannot create it ({exc.strerror or exc})") from None
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        raise SourceError(f"cache folder {folder}: owned by another user or writable by others; "
                          "set GANDATA_CACHE_DIR to a folder of your own")
    return folder


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Cached copies this process has verified: path -> (size, mtime_ns).
_VERIFIED: dict[str, tuple[int, int]] = {}


def _cached_copy_ok(path: str, size: int) -> bool:
    """Whether the cached ``path`` is complete and unchanged: the size the
    store reported, and the SHA-256 recorded when it was downloaded."""
    try:
        st = os.stat(path)
        with open(path + ".sha256", encoding="ascii") as fh:
            recorded = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return False
    if size and st.st_size != size:
        return False
    if _VERIFIED.get(path) == (st.st_size, st.st_mtime_ns):
        return True
    if _sha256_file(path) != recorded:
        return False
    _VERIFIED[path] = (st.st_size, st.st_mtime_ns)
    return True


@dataclass
class RemoteArchiveSource:
    """A zip or tar archive at a URL, read from a local cached copy."""

    uri: str
    url: str
    kind: str
    size: int
    version: str

    def _local(self) -> ArchiveSource:
        """The archive source on the cached copy, downloading it if needed
        (to a temporary name, then renamed: concurrent workers are safe)."""
        digest = hashlib.sha256(f"{self.url}\0{self.size}\0{self.version}".encode()).hexdigest()[:24]
        folder = _private_cache()
        path = os.path.join(folder, f"{digest}-{self.url.rstrip('/').rsplit('/', 1)[-1]}")
        if not _cached_copy_ok(path, self.size):
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            fs, remote = filesystem(self.url, option=f"source {self.uri}")
            try:
                fs.get_file(remote, tmp)
                got = os.path.getsize(tmp)
                if self.size and got != self.size:
                    raise SourceError(f"source {self.uri}: downloaded {got} bytes, but the store lists {self.size}")
                # The hash first, then the archive: a copy without its hash
                # is never trusted.
                with open(f"{tmp}.sha256", "w", encoding="ascii") as fh:
                    fh.write(_sha256_file(tmp) + "\n")
                os.replace(f"{tmp}.sha256", path + ".sha256")
                os.replace(tmp, path)
            except OSError as exc:
                raise SourceError(f"source {self.uri}: cannot download the archive ({exc})") from None
            finally:
                for leftover in (tmp, f"{tmp}.sha256"):
                    if os.path.exists(leftover):
                        os.unlink(leftover)
        return _CachedArchive(uri=self.uri, path=path, kind=self.kind, url=self.url)

    def partitions(self) -> Sequence[Partition]:
        """The archive source's partitions of the cached copy."""
        return self._local().partitions()

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        """The archive source's records, with the URL in every locator."""
        return self._local().read(partition)

    def class_names(self) -> list[str] | None:
        return None

    def fingerprint(self) -> str:
        """sha256 over the URL's size and ETag (or mtime) and the kind."""
        return hashlib.sha256(f"gandata.remote-archive/1\0{self.kind}\0{self.size}\0{self.version}".encode()).hexdigest()


def open_remote(uri: str, spec: SourceSpec, ctx: SourceContext) -> RemoteFolderSource | RemoteArchiveSource:
    """The source for an object-store URI: ``URL`` (folder, or archive by its
    name), ``folder:URL``, ``zip:URL`` or ``tar:URL``. SourceError when the URL
    cannot be listed or a labels CSV is given."""
    if spec.labels or ctx.labels_csv:
        raise SourceError(f"source {uri}: --labels is not supported for object-store sources yet")
    kind = None
    url = uri
    for prefix in ("folder", "zip", "tar"):
        if uri.startswith(prefix + ":"):
            kind, url = (None if prefix == "folder" else prefix), uri[len(prefix) + 1:]
            break
    else:
        kind = archive_kind(url)
    url = url.rstrip("/")
    if kind is None:
        source = RemoteFolderSource(uri=uri, url=url)
        source._listing()  # fail fast on a bad URL, before any work
        return source
    fs, path = filesystem(url, option=f"source {uri}")
    try:
        info = fs.info(path)
    except (FileNotFoundError, OSError) as exc:
        raise SourceError(f"source {uri}: no such archive object ({exc})") from None
    return RemoteArchiveSource(uri=uri, url=url, kind=kind, size=int(info.get("size") or 0), version=_version(info))
