"""Large buffers are written whole, in slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gandata.util import writes


def test_a_buffer_larger_than_a_slice_is_written_whole_in_slices(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(writes, "WRITE_SLICE", 1000)
    data = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)
    sizes = []
    with open(tmp_path / "x", "wb") as fh:
        real_write = fh.write
        assert writes.write_in_slices(_Recorder(fh, sizes), memoryview(data.view(np.uint16).reshape(-1, 2))) == 4000
        real_write(b"!")
    assert (tmp_path / "x").read_bytes() == data.tobytes() + b"!"
    assert sizes == [1000, 1000, 1000, 1000]


class _Recorder:
    def __init__(self, fh, sizes):
        self.fh, self.sizes = fh, sizes

    def write(self, chunk):
        self.sizes.append(len(chunk))
        return self.fh.write(chunk)
