"""The global plan step: decides which staged samples go where.

This is the one place that sees the whole dataset, and it only ever touches
small per-sample metadata (never pixels): exact-duplicate removal, label ids,
the seeded shuffle, shard assignment and the dataset statistics.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq

from gandata.clean.scores import THUMB_PX
from gandata.errors import BuildError
from gandata.ingest.staging import META_FILE, read_meta
from gandata.records import Rejection
from gandata.util.arrow import numpy_column, string_column, to_numpy
from gandata.util.writes import write_in_slices

UNLABELED = -1


# Staged columns left in the partition files: read per partition, and only
# for the rows that need them (the near-duplicate candidates), so the plan's
# memory does not grow by a thumbnail (256 bytes) per sample.
LAZY_COLUMNS = ("thumb",)
THUMB_BYTES = THUMB_PX * THUMB_PX  # a staged grayscale thumbnail


@dataclass
class StagedTable:
    """All staged samples, in (source, partition, row) order.

    Columnar: the plan steps read whole columns as numpy arrays (``column``,
    ``content_groups``, ``label_codes``, ``channel_sums``) and turn strings
    into Python objects only for the rows they report (``strings``)."""

    table: pa.Table  # meta columns (minus LAZY_COLUMNS) + part, row, source_index
    part_dirs: list[str]
    source_uris: list[str]
    # The thumbnails copied into one flat uint8 file by load_staged (or None:
    # read from the partitions).
    thumbs_file: str | None = None
    _groups: np.ndarray | None = field(default=None, repr=False)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> np.ndarray:
        return to_numpy(self.table.column(name))

    def keys(self) -> list[str]:
        return self.table.column("key").to_pylist()

    def strings(self, name: str, rows: np.ndarray | Sequence[int]) -> list[Any]:
        """The Python values of column ``name`` at ``rows`` (only those rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return []
        return self.table.column(name).take(numpy_column(rows)).to_pylist()

    def content_groups(self) -> np.ndarray:
        """Dense int64 id per staged row, equal for equal content hashes
        (ids follow the sorted hashes). Exact dedup by sorting: the 16-byte
        hashes are compared as two uint64 words, never as Python bytes."""
        if self._groups is None:
            n = self.num_rows
            words = _hash_words(self.table.column("content_hash")) if n else np.zeros((0, 2), np.uint64)
            # Sorting by the first word alone is twice as fast as by both; it
            # groups exactly unless two different hashes share a first word
            # (about one build in 10**5 at 10M rows), then both words decide.
            order = np.argsort(words[:, 0])
            ordered = words[order]
            new = np.ones(n, dtype=bool)
            if n > 1:
                same_first = ordered[1:, 0] == ordered[:-1, 0]
                if (same_first & (ordered[1:, 1] != ordered[:-1, 1])).any():
                    order = np.lexsort((words[:, 1], words[:, 0]))
                    ordered = words[order]
                    same_first = ordered[1:, 0] == ordered[:-1, 0]
                new[1:] = ~(same_first & (ordered[1:, 1] == ordered[:-1, 1]))
            groups = np.empty(n, dtype=np.int64)
            groups[order] = np.cumsum(new) - 1
            self._groups = groups
        return self._groups

    def label_codes(self) -> tuple[np.ndarray, list[str | None]]:
        """(code per row, names): ``names[code]`` is the row's label; equal
        labels share a code. Codes follow first appearance; None is a name too."""
        if self.num_rows == 0:
            return np.zeros(0, np.int64), []
        encoded = pc.dictionary_encode(self.table.column("label"), null_encoding="encode").combine_chunks()
        codes = to_numpy(encoded.indices).astype(np.int64)
        return codes, encoded.dictionary.to_pylist()

    def channel_sums(self, name: str) -> np.ndarray:
        """A per-channel list column (``channel_sum``/``channel_sumsq``) as float64 [n, C]."""
        if self.num_rows == 0:
            return np.zeros((0, 0), np.float64)
        # One copy: each chunk's values are viewed in place and concatenated
        # (combining the chunks first, then copying and casting, made three:
        # about 1.5 s at 10M rows).
        chunks = [to_numpy(chunk.flatten(), copy=False) for chunk in self.table.column(name).chunks]
        return np.concatenate(chunks).astype(np.float64, copy=False).reshape(self.num_rows, -1)

    def thumbnails(self, rows: np.ndarray) -> np.ndarray:
        """uint8 [len(rows), T] thumbnails of ``rows``, read partition by
        partition from the staging files (only those rows are kept)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.thumbs_file is not None:
            return map_thumbnails(self.thumbs_file, rows)
        return read_thumbnails(self.part_dirs, self.column("part")[rows], self.column("row")[rows])


def map_thumbnails(path: str, rows: np.ndarray) -> np.ndarray:
    """uint8 [len(rows), THUMB_BYTES]: ``rows`` of a thumbnail file written by
    ``load_staged`` (memory-mapped; only those rows are read)."""
    size = os.path.getsize(path)
    if size == 0:
        return np.zeros((len(rows), THUMB_BYTES), np.uint8)
    mapped = np.memmap(path, dtype=np.uint8, mode="r", shape=(size // THUMB_BYTES, THUMB_BYTES))
    return np.asarray(mapped[np.asarray(rows, dtype=np.int64)])


def read_thumbnails(part_dirs: Sequence[str], parts: np.ndarray, local_rows: np.ndarray) -> np.ndarray:
    """uint8 [n, T] thumbnails of the staged rows ``(parts[k], local_rows[k])``,
    read one partition at a time (a worker on another machine reads them the
    same way from shared staging)."""
    out: np.ndarray | None = None
    for part in np.unique(parts).tolist():
        where = np.flatnonzero(parts == part)
        column = read_meta(Path(part_dirs[part]), columns=["thumb"]).column("thumb")
        data = b"".join(column.take(numpy_column(np.asarray(local_rows[where], dtype=np.int64))).to_pylist())
        block = np.frombuffer(data, np.uint8).reshape(len(where), -1)
        if out is None:
            out = np.empty((len(parts), block.shape[1]), np.uint8)
        out[where] = block
    return out if out is not None else np.zeros((0, 0), np.uint8)


def _hash_words(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed_size_binary(16) column as uint64 [n, 2] (big-endian words, so
    the word order is the bytes' order)."""
    array = column.combine_chunks()
    if array.null_count:
        # Staging writes a hash for every row; a null means a damaged partition.
        raise BuildError("staged metadata has rows without a content hash: delete OUTPUT/.staging and build again")
    raw = np.frombuffer(array.buffers()[1], np.uint8)[array.offset * 16 : (array.offset + len(array)) * 16]
    return raw.view(">u8").reshape(-1, 2).astype(np.uint64)


@dataclass
class ShardPlan:
    index: int
    split: str
    entries: np.ndarray  # indices into Plan.entries arrays


@dataclass
class Plan:
    """The outcome of the plan step: what the write pass produces."""

    classes: list[str]
    # One element per output sample, in output order.
    rows: np.ndarray  # index into the staged table
    labels: np.ndarray  # int64 label id, -1 when unlabeled
    splits: np.ndarray  # split name per entry (object array)
    shards: list[ShardPlan]
    rejections: list[Rejection]
    mean: list[float]
    std: list[float]
    # Filled by later stages (class balancing): per-entry extras.
    weights: np.ndarray | None = None
    derived_from: np.ndarray | None = None  # staged row of the original, -1 for originals
    augmentation: list[str | None] | None = None
    # Oversampled copies: the copy number per entry (0 for originals), the
    # seed of each copy's augmentation, and the augmentation spec (None:
    # exact copies). Set by the balance step.
    copy_numbers: np.ndarray | None = None
    augment_seeds: np.ndarray | None = None
    augment_spec: str | None = None
    # Set by the cleaning step: near-duplicate cluster per staged row (the
    # split keeps a cluster on one side), and the manifest's ``clean`` record.
    cluster_ids: np.ndarray | None = None
    clean_summary: dict[str, Any] | None = None


SPILL_FILE = "plan-metadata.arrow"


def load_staged(part_dirs: Sequence[str], source_indices: Sequence[int], source_uris: Sequence[str],
                memory_budget: int | None = None, spill_dir: str | os.PathLike[str] | None = None,
                thumbs_file: str | os.PathLike[str] | None = None) -> StagedTable:
    """Concatenate the metadata of every staged partition.

    When ``spill_dir`` is given and the metadata would take more than
    ``memory_budget`` bytes, the partitions are streamed one at a time into
    an Arrow file there and the table is memory-mapped from it: the same
    columns and values, held by the page cache (which the OS can evict)
    instead of this process's heap.

    With ``thumbs_file``, the thumbnails are copied (in the same pass, one
    partition at a time) into that flat uint8 file, one row per staged row,
    so the near-duplicate confirmation memory-maps the rows it needs instead
    of opening every partition again."""
    thumbs = _ThumbWriter(Path(thumbs_file)) if thumbs_file is not None else None
    if spill_dir is not None and memory_budget is not None and part_dirs:
        if estimate_meta_bytes(part_dirs) > memory_budget:
            return _load_spilled(part_dirs, source_indices, source_uris, Path(spill_dir), thumbs)
    tables = [_partition_table(part, part_dir, src, thumbs) for part, (part_dir, src) in enumerate(zip(part_dirs, source_indices))]
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
    else:
        table = pa.table({"key": string_column([])})
    return StagedTable(table=table, part_dirs=list(part_dirs), source_uris=list(source_uris),
                       thumbs_file=thumbs.close() if thumbs is not None else None)


class _ThumbWriter:
    """Appends each partition's thumbnails to one flat file (rows of
    ``THUMB_BYTES``; zeros for rows without one), renamed into place when done."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}")
        self.fh = open(self.tmp, "wb")

    def add(self, column: pa.ChunkedArray | None, num_rows: int) -> None:
        if column is None or column.null_count:
            values = [None] * num_rows if column is None else column.to_pylist()
            write_in_slices(self.fh, b"".join(v if v is not None else bytes(THUMB_BYTES) for v in values))
            return
        written = 0
        for chunk in column.chunks:
            # The values buffer between the first and last offset is the
            # chunk's bytes in row order: written as is, no Python bytes per row.
            offsets = np.frombuffer(chunk.buffers()[1], np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
            if len(chunk):
                written += write_in_slices(self.fh, memoryview(chunk.buffers()[2])[int(offsets[0]) : int(offsets[-1])])
        if written != num_rows * THUMB_BYTES:
            raise BuildError(f"staged thumbnails are not {THUMB_BYTES} bytes each: delete OUTPUT/.staging and build again")

    def close(self) -> str:
        self.fh.close()
        os.replace(self.tmp, self.path)
        return str(self.path)


def _partition_table(part: int, part_dir: str, source_index: int, thumbs: _ThumbWriter | None = None) -> pa.Table:
    """One partition's metadata plus its part, row and source_index columns
    (the thumbnails, when read, go to ``thumbs``)."""
    if thumbs is None:
        meta = read_meta(Path(part_dir), exclude=LAZY_COLUMNS)
    else:
        meta = read_meta(Path(part_dir))
        thumbs.add(meta.column("thumb") if "thumb" in meta.column_names else None, meta.num_rows)
        meta = meta.drop_columns([c for c in LAZY_COLUMNS if c in meta.column_names])
    n = meta.num_rows
    meta = meta.append_column("part", numpy_column(np.full(n, part, np.int32)))
    meta = meta.append_column("row", numpy_column(np.arange(n, dtype=np.int32)))
    return meta.append_column("source_index", numpy_column(np.full(n, source_index, np.int32)))


def estimate_meta_bytes(part_dirs: Sequence[str]) -> int:
    """The in-memory size of the staged metadata, from the parquet footers
    (uncompressed column sizes, lazy columns left out; no data read)."""
    total = 0
    for part_dir in part_dirs:
        metadata = pq.read_metadata(Path(part_dir) / META_FILE)
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                if column.path_in_schema.split(".")[0] not in LAZY_COLUMNS:
                    total += column.total_uncompressed_size
        total += metadata.num_rows * 12  # part, row, source_index
    return total


def _load_spilled(part_dirs: Sequence[str], source_indices: Sequence[int], source_uris: Sequence[str],
                  spill_dir: Path, thumbs: _ThumbWriter | None = None) -> StagedTable:
    # The unified schema of all partitions (the one concat_tables would
    # give), so each partition is written as it is read: one in memory at a time.
    schemas = [pq.read_schema(Path(d) / META_FILE) for d in part_dirs]
    fields = [pa.schema([f for f in s if f.name not in LAZY_COLUMNS]) for s in schemas]
    extra = pa.schema([("part", pa.int32()), ("row", pa.int32()), ("source_index", pa.int32())])
    schema = pa.unify_schemas(fields + [extra], promote_options="default")
    spill_dir.mkdir(parents=True, exist_ok=True)
    path = spill_dir / SPILL_FILE
    tmp = spill_dir / f".{SPILL_FILE}.{os.getpid()}"
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for part, (part_dir, src) in enumerate(zip(part_dirs, source_indices)):
            table = _partition_table(part, part_dir, src, thumbs)
            columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
                       else pa.nulls(table.num_rows, f.type) for f in schema]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    os.replace(tmp, path)
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return StagedTable(table=table, part_dirs=list(part_dirs), source_uris=list(source_uris),
                       thumbs_file=thumbs.close() if thumbs is not None else None)


def resolve_classes(found: Sequence[str | None], declared: Sequence[Sequence[str] | None]) -> list[str]:
    """Class names in label-id order: names a source declares keep its order
    (so hf/CIFAR label ids survive); other names found are sorted after them."""
    ordered: list[str] = []
    seen: set[str] = set()
    for names in declared:
        for name in names or ():
            if name not in seen:
                ordered.append(name)
                seen.add(name)
    rest = sorted({n for n in found if n is not None and n not in seen})
    return ordered + rest


def synthetic_mask(staged: StagedTable) -> np.ndarray:
    """True for staged samples a source flagged ``synthetic`` in their
    provenance (samples of a generator, e.g. ``gan:``)."""
    if staged.num_rows == 0 or "provenance" not in staged.table.column_names:
        return np.zeros(staged.num_rows, dtype=bool)
    column = staged.table.column("provenance")
    # A vectorized substring test first, so datasets without synthetic
    # samples never parse their provenance JSON row by row.
    found = pc.match_substring(column, '"synthetic"')
    candidates = np.flatnonzero(to_numpy(found, null_as=False))
    out = np.zeros(staged.num_rows, dtype=bool)
    for i in candidates.tolist():
        out[i] = bool(json.loads(column[i].as_py()).get("synthetic"))
    return out


def label_ids(staged: StagedTable, classes: Sequence[str]) -> np.ndarray:
    """Label id per staged row (-1: unlabeled or not a class), mapped per
    distinct label, not per row."""
    codes, names = staged.label_codes()
    index = {name: i for i, name in enumerate(classes)}
    table = np.array([index.get(name, UNLABELED) if name is not None else UNLABELED for name in names] + [UNLABELED], np.int64)
    return table[codes]


def channel_stats(staged: StagedTable, rows: np.ndarray, size_px: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the final dataset on the [0, 1] scale,
    from the per-sample sums computed at ingest (no pixel pass)."""
    if len(rows) == 0:
        return [], []
    count = len(rows) * size_px * size_px
    mean = _sum_rows(staged.channel_sums("channel_sum"), rows) / count
    var = np.maximum(_sum_rows(staged.channel_sums("channel_sumsq"), rows) / count - mean**2, 0.0)
    return [float(m) for m in mean], [float(math.sqrt(v)) for v in var]


# Rows gathered at a time by _sum_rows.
_SUM_BLOCK = 65_536


def _sum_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows].sum(axis=0)`` to the last bit, without gathering every
    row into one array. numpy reduces axis 0 of a C-ordered array row after
    row, so adding each gathered block onto the running total (as a first
    row) takes the same steps in the same order; a block stays in cache,
    where 10M gathered rows would not (1.2 s at 10M per column)."""
    total: np.ndarray | None = None
    for start in range(0, len(rows), _SUM_BLOCK):
        block = values[rows[start : start + _SUM_BLOCK]]
        total = block.sum(axis=0) if total is None else np.add.reduce(np.concatenate([total[None], block]), axis=0)
    assert total is not None  # rows is not empty
    return total


# How assign_shards cuts splits; part of the build fingerprint, so that a build
# resumed by newer code never reuses shards cut the old way (1: full shards
# and a short last one; 2: even sizes).
SHARD_LAYOUT = 2


def assign_shards(splits: np.ndarray, shard_size: int) -> list[ShardPlan]:
    """Cut each split's entries (already in output order) into shards: the
    fewest that hold at most ``shard_size`` each, of sizes differing by at
    most one (earlier shards take the extra samples).

    Even sizes, rather than full shards and a short last one, let the write
    stage's workers finish together (6,000 samples at 4,096 per shard were
    4,096 + 1,904: one worker wrote twice as long as the other) and give
    readers that split shards between ranks equal work."""
    shards: list[ShardPlan] = []
    for split in _split_order(splits):
        idx = np.flatnonzero(splits == split)
        for entries in np.array_split(idx, -(-len(idx) // shard_size)):
            shards.append(ShardPlan(index=len(shards), split=split, entries=entries))
    return shards


def _split_order(splits: np.ndarray) -> list[str]:
    names = set(splits.tolist())
    ordered = [s for s in ("train", "val", "test") if s in names]
    return ordered + sorted(names - set(ordered))


