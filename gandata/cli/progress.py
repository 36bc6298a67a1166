"""Progress for the library's progress callbacks (``ProgressFn``): a tqdm bar
per phase on a terminal, a plain line per interval otherwise (a log file gets
readable lines, never carriage-return redraws)."""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Callable

# The unit of each phase's counts (see gandata.records.ProgressFn): images,
# the unit a user thinks in, except uploads, which count files.
_UNITS = {"upload": "file"}
_UNIT_WORDS = {"img": "images", "file": "files"}


def unit_of(phase: str) -> str:
    """The short unit of a phase's counts ('img' or 'file')."""
    return _UNITS.get(phase.split()[0], "img")


class PhaseBars:
    """One progress display per pipeline phase, on ``stream`` (stderr).

    On a terminal: a tqdm bar per phase. Elsewhere (logs, CI, pipes): a plain
    line ``phase: done/total images (pct%)`` at most every ``interval_s``
    seconds, and a last line when a phase that ran for ``min_s`` seconds or
    more ends, so short phases stay silent. ``quiet`` silences both."""

    def __init__(self, quiet: bool, stream: IO[str] | None = None, interval_s: float = 10.0, min_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s
        self.min_s = min_s
        self.clock = clock
        self._bars: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._printed: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.tty:
            self._draw(phase, done, total)
        else:
            self._line(phase, done, total)

    def _draw(self, phase: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        bar = self._bars.get(phase)
        if bar is None:
            bar = self._bars[phase] = tqdm(total=total, desc=f"{phase:>7}", unit=unit_of(phase),
                                           leave=True, file=self.stream)
        bar.total = total
        bar.n = done
        bar.refresh()
        if total is not None and done >= total:
            bar.close()

    def _line(self, phase: str, done: int, total: int | None) -> None:
        now = self.clock()
        start = self._started.setdefault(phase, now)
        finished = total is not None and done >= total
        last = self._printed.get(phase, start)
        if finished:
            if now - start < self.min_s or self._printed.get(phase) == -1.0:
                return
        elif now - last < self.interval_s:
            return
        word = _UNIT_WORDS[unit_of(phase)]
        count = f"{done}/{total} {word} ({100 * done / total:.0f}%)" if total else f"{done} {word}"
        print(f"{phase}: {count}, {now - start:.0f} s", file=self.stream, flush=True)
        # -1 marks a phase whose last line was printed (no repeat on re-reports).
        self._printed[phase] = -1.0 if finished else now

    def close(self) -> None:
        """Close the open bars (an interrupted phase leaves its bar as it was)."""
        for bar in self._bars.values():
            bar.close()
