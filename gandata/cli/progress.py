"""Progress bars for the library's progress callbacks (``ProgressFn``)."""

from __future__ import annotations

import sys
from typing import Any


class PhaseBars:
    """One tqdm bar per pipeline phase, on stderr; silent when quiet or when
    stderr is not a terminal (logs, CI)."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self._bars: dict[str, Any] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self._bars.get(phase)
        if bar is None:
            bar = self._bars[phase] = tqdm(total=total, desc=f"{phase:>7}", unit="part" if phase.startswith(("ingest", "synth")) else "shard", leave=True, file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
