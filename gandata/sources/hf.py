"""HuggingFace ``datasets`` as a source (the ``datasets`` extra).

URI forms:

- ``hf:NAME[:CONFIG][@SPLIT]``: ``datasets.load_dataset(NAME, CONFIG)``, so a
  Hub name works online and, with ``HF_DATASETS_OFFLINE=1``, from the local
  HF cache. When NAME is a local path (``hf:./faces``, ``hf:/data/faces``) it
  is a local dataset folder: parquet/arrow files, a script-free repository
  layout (README.md with ``configs``, ``data/*.parquet``), or an
  ``imagefolder`` tree.
- ``hf-disk:PATH[@SPLIT]``: ``datasets.load_from_disk`` (the output of
  ``save_to_disk``, a Dataset or a DatasetDict).

Options (the source's ``[[sources]]`` table or the URI query):
``streaming=1`` (iterate the Hub/files without preparing the whole dataset;
partitions are the dataset's own shards), ``cache_dir=DIR``, and the spec's
``image_column``/``label_column``. Without ``@SPLIT`` the ``train`` split is
read, or the only/first split when there is no ``train``.

The image column is the (first) column with an ``Image`` feature, the label
column the (first) ``ClassLabel``; its names become the class names, in label
id order. A dataset without a label column is unlabeled. Image bytes are read
raw (``Image(decode=False)`` / the Arrow struct), so one truncated image is a
``corrupt`` rejection from the decoder, never the end of the iteration.

Non-streaming datasets are memory-mapped Arrow tables, partitioned into row
ranges: a worker reads only its own rows, ``BATCH_ROWS`` at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.arrays import query_options
from gandata.sources.base import Partition, SourceContext
from gandata.sources.folder import MAX_FILE_BYTES
from gandata.util.paths import regular_file_inside

ROWS_PER_PARTITION = 4096
BATCH_ROWS = 256
_OPTIONS = ("streaming", "cache_dir")

# Per-process cache of opened datasets: workers read one partition after
# another, and re-opening (even from the cache) costs far more than a batch.
_OPEN: dict[HfTarget, Any] = {}


@dataclass(frozen=True)
class HfTarget:
    """What an hf:/hf-disk: URI names."""

    kind: str  # "hub", "local" or "disk"
    name: str
    config: str | None
    split: str | None
    streaming: bool
    cache_dir: str | None


def parse_hf_uri(uri: str, spec: SourceSpec) -> HfTarget:
    """Split ``hf:NAME[:CONFIG][@SPLIT][?k=v]`` / ``hf-disk:PATH[@SPLIT]``."""
    scheme, _, rest = uri.partition(":")
    rest, _, query = rest.partition("?")
    options = query_options(uri, query, spec, _OPTIONS)
    split = None
    if "@" in rest:
        rest, _, split = rest.rpartition("@")
        split = split or None
    config = None
    looks_local = rest.startswith((".", "/", "~")) or os.path.exists(rest)
    if scheme == "hf" and not looks_local and ":" in rest:
        rest, _, config = rest.rpartition(":")
        config = config or None
    if not rest:
        raise SourceError(f"source {uri}: no dataset name or path")
    streaming = options.get("streaming", "0").lower() in ("1", "true", "yes")
    if scheme == "hf-disk":
        kind = "disk"
    else:
        kind = "local" if looks_local else "hub"
    name = os.path.expanduser(rest) if kind != "hub" else rest
    if kind != "hub" and not os.path.exists(name):
        raise SourceError(f"source {uri}: no such dataset folder {name}")
    return HfTarget(kind=kind, name=name, config=config, split=split, streaming=streaming and kind != "disk",
                    cache_dir=options.get("cache_dir"))


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise SourceError("hf: sources need the 'datasets' package (pip install 'gandata[hf]')") from None
    return datasets


def _pick_split(uri: str, splits: Sequence[str], wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in splits:
            raise SourceError(f"source {uri}: no split {wanted!r} (available: {', '.join(splits)})")
        return wanted
    if "train" in splits:
        return "train"
    if not splits:
        raise SourceError(f"source {uri}: the dataset has no splits")
    return list(splits)[0]


def load_split(uri: str, target: HfTarget) -> Any:
    """The ``datasets.Dataset`` (or ``IterableDataset`` when streaming) of one
    split; cached per process. SourceError naming the source on failure."""
    cached = _OPEN.get(target)
    if cached is not None:
        return cached
    datasets = _import_datasets()
    try:
        if target.kind == "disk":
            loaded = datasets.load_from_disk(target.name)
        else:
            kwargs: dict[str, Any] = {"streaming": target.streaming}
            if target.cache_dir:
                kwargs["cache_dir"] = target.cache_dir
            loaded = datasets.load_dataset(target.name, target.config, **kwargs)
    except SourceError:
        raise
    except Exception as exc:  # datasets raises many kinds (FileNotFound, ConnectionError, DatasetNotFound ...)
        raise SourceError(f"source {uri}: cannot load the dataset ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        loaded = loaded[_pick_split(uri, list(loaded.keys()), target.split)]
    elif target.split is not None and str(getattr(loaded, "split", None) or target.split) != target.split:
        raise SourceError(f"source {uri}: the dataset holds only the split {loaded.split!r}")
    if len(_OPEN) > 8:
        _OPEN.clear()
    _OPEN[target] = loaded
    return loaded


def detect_columns(uri: str, features: Any, image_column: str | None, label_column: str | None) -> tuple[str, str | None, list[str] | None]:
    """(image column, label column or None, class names or None)."""
    datasets = _import_datasets()
    if features is None:
        raise SourceError(f"source {uri}: the dataset does not declare its features; pass --image-column")
    columns = list(features.keys())
    if image_column is None:
        found = [c for c in columns if isinstance(features[c], datasets.Image)]
        if not found:
            raise SourceError(f"source {uri}: no column has an Image feature (columns: {', '.join(columns)}); pass --image-column")
        image_column = found[0]
    elif image_column not in features:
        raise SourceError(f"source {uri}: --image-column {image_column!r} is not a column (columns: {', '.join(columns)})")
    if label_column is None:
        found = [c for c in columns if isinstance(features[c], datasets.ClassLabel)]
        label_column = found[0] if found else None
    elif label_column not in features:
        raise SourceError(f"source {uri}: --label-column {label_column!r} is not a column (columns: {', '.join(columns)})")
    names = None
    if label_column is not None and isinstance(features[label_column], datasets.ClassLabel):
        names = list(features[label_column].names)
    return image_column, label_column, names


def _readme_license(folder: str) -> str | None:
    """``license:`` from the YAML front matter of a dataset card README.md."""
    path = os.path.join(folder, "README.md")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(65536)
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    header = text[3:].split("\n---", 1)[0]
    for line in header.splitlines():
        if line.startswith("license:"):
            value = line.split(":", 1)[1].strip().strip("'\"")
            return value or None
    return None


def _hub_card_license(name: str) -> str | None:
    """The Hub dataset card's licence, from the local hub cache or the Hub;
    None when neither can be reached."""
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(name, "README.md", repo_type="dataset")
    except Exception:  # offline and not cached, no such repo, no card: unknown
        return None
    return _readme_license(os.path.dirname(path))


@dataclass
class HfSource:
    """One split of a HuggingFace dataset (see the module docstring)."""

    uri: str
    target: HfTarget
    image_column: str
    label_column: str | None
    names: tuple[str, ...] | None
    num_rows: int | None
    num_shards: int
    dataset_license: str | None
    content: str

    def partitions(self) -> Sequence[Partition]:
        if self.target.streaming:
            return [Partition(index=i, items=("shard", i, self.num_shards), description=f"{self.uri} shard {i + 1}/{self.num_shards}")
                    for i in range(self.num_shards)]
        n = self.num_rows or 0
        return [Partition(index=i, items=("rows", start, min(n, start + ROWS_PER_PARTITION)),
                          description=f"{self.uri} rows {start}..{min(n, start + ROWS_PER_PARTITION) - 1}",
                          num_inputs=min(n, start + ROWS_PER_PARTITION) - start)
                for i, start in enumerate(range(0, n, ROWS_PER_PARTITION))]

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        ds = load_split(self.uri, self.target)
        mode, a, b = partition.items
        if mode == "shard":
            yield from self._read_stream(ds, a, b)
            return
        table_ds = ds.with_format("arrow")
        for start in range(a, b, BATCH_ROWS):
            batch = table_ds[start:min(b, start + BATCH_ROWS)]
            images = batch.column(self.image_column).to_pylist()
            labels = batch.column(self.label_column).to_pylist() if self.label_column else [None] * len(images)
            for i, (value, label) in enumerate(zip(images, labels)):
                yield self._sample(str(start + i), value, label)

    def _read_stream(self, ds: Any, index: int, num_shards: int) -> Iterator[Sample | Rejection]:
        datasets = _import_datasets()
        part = ds.shard(num_shards=num_shards, index=index) if num_shards > 1 else ds
        if isinstance((part.features or {}).get(self.image_column), datasets.Image):
            part = part.cast_column(self.image_column, datasets.Image(decode=False))
        for row, record in enumerate(part):
            yield self._sample(f"shard{index}/{row}", record.get(self.image_column), record.get(self.label_column) if self.label_column else None)

    def _sample(self, row: str, value: Any, label: Any) -> Sample | Rejection:
        key = row
        locator = f"{self.target.name}#{row}"
        class_name = self._label_name(label)
        if value is None:
            return Rejection(key=key, locator=locator, reason="corrupt", detail=f"row {row}: the image is missing (null)", source=self.uri)
        prov = {"origin": row}
        if isinstance(value, dict):  # an Image feature: {"bytes", "path"}
            data = value.get("bytes")
            if data is None and value.get("path"):
                read = self._read_path(row, key, str(value["path"]))
                if isinstance(read, Rejection):
                    return read
                data = read
            if data is None:
                return Rejection(key=key, locator=locator, reason="corrupt", detail=f"row {row}: the image has neither bytes nor a path", source=self.uri)
            return Sample(key=key, locator=locator, label=class_name, data=bytes(data), provenance=prov)
        if isinstance(value, (bytes, bytearray)):
            return Sample(key=key, locator=locator, label=class_name, data=bytes(value), provenance=prov)
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            array = None
        if array is None or array.dtype == object or array.ndim not in (2, 3):
            return Rejection(key=key, locator=locator, reason="unsupported",
                             detail=f"row {row}: column {self.image_column!r} holds {type(value).__name__}, not an image", source=self.uri)
        return Sample(key=key, locator=locator, label=class_name, array=array, provenance=prov)

    def _path_roots(self) -> list[str]:
        """Folders an Image cell's ``path`` may point into: the dataset's own
        folder (hf-disk:, local datasets) or the HuggingFace caches (hub)."""
        # A cache_dir option holds the files the datasets library extracted.
        extra = [os.path.realpath(self.target.cache_dir)] if self.target.cache_dir else []
        if self.target.kind in ("local", "disk"):
            root = self.target.name if os.path.isdir(self.target.name) else os.path.dirname(self.target.name) or "."
            return [os.path.realpath(root), *extra]
        datasets = _import_datasets()
        return extra + [os.path.realpath(str(p)) for p in (getattr(datasets.config, "HF_DATASETS_CACHE", None),
                                                            getattr(datasets.config, "HF_CACHE_HOME", None)) if p]

    def _read_path(self, row: str, key: str, path: str) -> bytes | Rejection:
        """The bytes of an Image cell given by path only. A dataset is data,
        not a licence to read this machine: the path must be a regular file
        (a FIFO would hang, /dev/zero never ends) inside the dataset's own
        folder or the HuggingFace cache, and at most MAX_FILE_BYTES long."""
        roots = self._path_roots()
        real = os.path.realpath(path if os.path.isabs(path) or not roots else os.path.join(roots[0], path))
        found = None
        for root in roots:
            if os.path.commonpath([root, real]) == root:
                found = regular_file_inside(root, os.path.relpath(real, root))
                break
        if found is None:
            return Rejection(key=key, locator=path, reason="unsupported", source=self.uri,
                             detail=f"row {row}: image path {path} is not a regular file inside the dataset's folder")
        try:
            with open(found, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            return Rejection(key=key, locator=path, reason="corrupt", source=self.uri,
                             detail=f"row {row}: cannot read {path} ({exc.strerror or exc})")
        if len(data) > MAX_FILE_BYTES:
            return Rejection(key=key, locator=path, reason="too_large", source=self.uri,
                             detail=f"row {row}: {path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        return data

    def _label_name(self, label: Any) -> str | None:
        if label is None:
            return None
        if self.names is not None and isinstance(label, (int, np.integer)):
            # ClassLabel uses -1 for "no label".
            return self.names[int(label)] if 0 <= int(label) < len(self.names) else None
        return str(label)

    def class_names(self) -> list[str] | None:
        return list(self.names) if self.names is not None else None

    def license(self) -> str | None:
        return self.dataset_license

    def fingerprint(self) -> str:
        return f"hf/1|{self.target}|{self.image_column}|{self.label_column}|{self.content}"


def _content_id(ds: Any, target: HfTarget) -> str:
    """Changes when the underlying data does: the Arrow fingerprint, plus the
    files' sizes and mtimes for local data."""
    parts = [str(getattr(ds, "_fingerprint", "") or "")]
    if target.kind != "hub" and os.path.exists(target.name):
        for dirpath, dirnames, filenames in os.walk(target.name):
            dirnames.sort()
            for fname in sorted(filenames):
                st = os.stat(os.path.join(dirpath, fname))
                parts.append(f"{os.path.relpath(os.path.join(dirpath, fname), target.name)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _open(uri: str, spec: SourceSpec) -> HfSource:
    target = parse_hf_uri(uri, spec)
    ds = load_split(uri, target)
    image_column, label_column, names = detect_columns(uri, ds.features, spec.image_column, spec.label_column)
    info_license = getattr(getattr(ds, "info", None), "license", None) or None
    if info_license is None and target.kind in ("local", "disk") and os.path.isdir(target.name):
        info_license = _readme_license(target.name)
    if info_license is None and target.kind == "hub":
        info_license = _hub_card_license(target.name)
    if target.streaming:
        num_rows, num_shards = None, max(1, int(getattr(ds, "num_shards", 1) or 1))
    else:
        num_rows, num_shards = len(ds), 1
    return HfSource(uri=uri, target=target, image_column=image_column, label_column=label_column,
                    names=tuple(names) if names is not None else None, num_rows=num_rows, num_shards=num_shards,
                    dataset_license=info_license, content=_content_id(ds, target))


def open_hf(uri: str, spec: SourceSpec, ctx: SourceContext) -> HfSource:
    """The source for ``hf:NAME[:CONFIG][@SPLIT]`` (Hub name or local folder)."""
    return _open(uri, spec)


def open_hf_disk(uri: str, spec: SourceSpec, ctx: SourceContext) -> HfSource:
    """The source for ``hf-disk:PATH[@SPLIT]`` (``save_to_disk`` output)."""
    return _open(uri, spec)
