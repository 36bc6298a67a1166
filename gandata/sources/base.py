"""The source interface every source kind implements.

A source is a small picklable object: the parent process calls
``partitions()`` once to split the work, and worker processes call
``read(partition)`` on their own copy. ``read`` yields ``Sample`` records (to be
decoded) and ``Rejection`` records (inputs refused before decoding: hidden
files, unsafe archive members, failed downloads). It never raises for one bad
input; it raises ``SourceError`` only when the source as a whole is unusable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Sequence

from gandata.records import Rejection, Sample


@dataclass(frozen=True)
class SourceContext:
    """What a source may need to know about the build it feeds."""

    # The build's image size; 0 while a build without --size asks a
    # generating source for its own size (``gandata.pipeline.generator_size``).
    size_px: int = 64
    channels: int = 3
    seed: int = 0
    # Only meaningful to web sources; refuses private addresses by default.
    allow_private_network: bool = False
    # Folder-like sources use this for labels read from a CSV (path,label).
    labels_csv: str | None = None
    # Web sources: the download cache kept across runs (OUTPUT/.cache/web).
    cache_dir: str | None = None
    # --max-pixels: array sources refuse images larger than this before
    # reading them (the decoders check files themselves).
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class Partition:
    """One unit of ingest work. ``items`` is whatever the source needs
    (file paths, archive members, row ranges); it must be picklable and
    deterministic for the same inputs."""

    index: int
    items: tuple[Any, ...] = field(default_factory=tuple)
    description: str = ""
    # How many inputs (files, rows, generated images) the partition holds,
    # when the source knows it up front: progress is then shown in images,
    # the unit a user thinks in, rather than in partitions.
    num_inputs: int | None = None


class Source(Protocol):
    """A source of images, constructed from a URI by its scheme's factory."""

    uri: str

    def partitions(self) -> Sequence[Partition]:
        """Split the source into deterministic units of work."""
        ...

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        """Yield the samples (and early rejections) of one partition."""
        ...

    def class_names(self) -> list[str] | None:
        """Class names in label-id order when the source defines an order
        (a ClassLabel feature, CIFAR meta); None to sort names found."""
        ...

    def fingerprint(self) -> str:
        """A string that changes whenever the source's content may have
        changed (file sizes and mtimes, dataset fingerprint); used to decide
        whether staged partitions can be reused on a re-run."""
        ...
