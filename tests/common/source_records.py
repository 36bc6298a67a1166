"""Reading a whole source in tests: every partition, one record per item."""

from __future__ import annotations

from gandata.records import Rejection, Sample


def read_all(src) -> dict[str, Sample | Rejection]:
    """Every record of every partition, keyed by sample key (keys must be unique)."""
    out: dict[str, Sample | Rejection] = {}
    for part in src.partitions():
        records = list(src.read(part))
        # Every item of a partition gives exactly one record.
        assert len(records) == len(part.items)
        for rec in records:
            assert rec.key not in out, rec.key
            out[rec.key] = rec
    return out


def samples(records) -> dict[str, Sample]:
    """The accepted samples among ``read_all``'s records."""
    return {k: r for k, r in records.items() if isinstance(r, Sample)}
