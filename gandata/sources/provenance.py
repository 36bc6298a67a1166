"""Provenance every sample carries, whatever its source kind.

``open_source`` wraps each source in ``ProvenanceSource``, which fills two
provenance fields the samples index (``samples.parquet``) and the manifest
summarise:

- ``origin``: the sample's original id within its source (a file path, a Hub
  row index, an array row); a source that sets it keeps its own value,
  otherwise the sample key is used;
- ``license``: the source's ``license`` option when given, else the licence
  the source itself knows (a Hub dataset card's ``license``), else
  ``"unknown"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from gandata.records import Rejection, Sample
from gandata.sources.base import Partition, Source

UNKNOWN_LICENSE = "unknown"


def source_license(source: object, override: str | None) -> str:
    """The licence recorded for a source's samples."""
    if override:
        return override
    known = getattr(source, "license", None)
    found = known() if callable(known) else known
    return str(found) if found else UNKNOWN_LICENSE


@dataclass
class ProvenanceSource:
    """Delegates to ``inner`` and stamps ``origin`` and ``license`` on every sample."""

    inner: Source
    license_override: str | None = None
    # The fingerprint, once asked for: a build needs it for the dataset's
    # fingerprint and again for each ingest key, and a folder's stats every
    # file (twice the listing of 10M files otherwise). One opened source is
    # one build's view of its input, so the two also always agree.
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    @property
    def uri(self) -> str:
        return self.inner.uri

    def license(self) -> str:
        return source_license(self.inner, self.license_override)

    def partitions(self) -> Sequence[Partition]:
        return self.inner.partitions()

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        license_name = self.license()
        for item in self.inner.read(partition):
            if isinstance(item, Sample):
                item.provenance.setdefault("origin", item.key)
                # The user's option wins; otherwise a licence the source
                # recorded per sample (a web page's) beats the source's own.
                if self.license_override:
                    item.provenance["license"] = self.license_override
                else:
                    item.provenance.setdefault("license", license_name)
            yield item

    def class_names(self) -> list[str] | None:
        return self.inner.class_names()

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = f"{self.inner.fingerprint()}|license={self.license()}"
        return self._fingerprint
