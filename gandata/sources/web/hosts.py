"""Per-host congestion control, shared by every worker process.

A small server (a Python or Node process, a NAS, a rate-limited edge) fails
in ways that say "too many at once" rather than "this URL is bad": its
accept queue overflows (SYNs dropped, 1-3-7 s retransmits), it resets
connections, answers 429/503, or slows down. So each host gets a
congestion window like TCP's: it starts at INITIAL_WINDOW requests in
flight, grows by one per success up to the slow-start threshold and by
1/window per success after it (additive increase), and is halved on an
overload signal (multiplicative decrease): a connect or read timeout, a
reset or dropped connection, 429 or 503, or a success whose time to first
byte is a spike against the fastest seen. ``host_concurrency`` is the
ceiling, never exceeded.

Only the first overload signal from requests sent under the current window
cuts it again: requests already in flight when the window was cut belong to
the burst that caused it (TCP cuts once per window of data, for the same
reason). Such failures are retried without being charged to the URL.

The state of a host (window, pause, failure streak, figures) lives in one
small JSON file per host under ``lock_dir`` (OUTPUT/.cache/web/hosts),
read and written under ``flock``, so every worker process and every
partition shares and keeps what was learnt. Its times are CLOCK_MONOTONIC,
the same for every process of the machine and immune to clock changes; the
parent resets the state at the start of each build. A request in flight holds one
of ``host_concurrency`` slot lock files; only the first ``window`` slots
are handed out. Locks vanish with a crashed process, so nothing leaks.
Without ``lock_dir`` the same happens in memory, for one process.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import json
import math
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Requests in flight to a host before anything is known about it.
INITIAL_WINDOW = 2.0
# A time to first byte above max(SPIKE_FACTOR x fastest, fastest + SPIKE_MARGIN_S)
# is a latency spike: a SYN retransmit (>= 1 s) or a server queueing far
# behind. The margin keeps ordinary jitter on a fast server from counting.
SPIKE_FACTOR = 4.0
SPIKE_MARGIN_S = 0.5
# The window grows only on answers within max(GROW_FACTOR x fastest, fastest +
# GROW_MARGIN_S): a slower answer means the server has started to queue, and
# more in flight would only lengthen its queue (and, on a small accept
# backlog, get SYNs dropped, which shows up only a second later). Slow start
# ends at the first such answer (like Linux's HyStart). Up to HOLD_FLOOR in
# flight (the fixed per-host limit gandata used before) the window grows
# whatever the latency, so that a host with jittery answers is not held at
# INITIAL_WINDOW; only failures and spikes cut it there. 3x, not 2x: on a
# busy client, our own decoding delays the event loop and lengthens answers
# that the server gave on time (2x held a 20 ms-latency server at ~25 of 32).
GROW_FACTOR = 3.0
GROW_MARGIN_S = 0.005
HOLD_FLOOR = 4.0
# Within one request of the window at the last cut, the window grows this many
# times slower (CUBIC's plateau): probing the level that failed costs a
# Retry-After pause or a dropped SYN each time, and it failed not long ago.
PLATEAU_SLOWDOWN = 8.0
# While another process may free a slot, waiting requests look again this often.
POLL_S = 0.002
# A refused connection counts as overload (not a dead host) when the host
# answered this recently or other requests to it are in flight.
ALIVE_S = 5.0
# Latency histogram: buckets 10% wide from 0.1 ms.
_BUCKET_BASE_MS = 0.1
_BUCKET_RATIO = 1.1


@dataclass(frozen=True)
class HostFigures:
    """What happened with one host during a build (all worker processes)."""

    host: str
    requests: int
    retries: int
    answered: int  # definitive answers: images, and refusals such as 404 or noai
    downloaded: int  # images received
    failed: int  # URLs given up as download_failed
    window: float
    max_window: float
    cuts: int
    median_ms: float | None
    given_up: str = ""

    def describe(self) -> str:
        """One line for a person: requests, retries, concurrency, median latency."""
        median = f"{self.median_ms:.0f} ms" if self.median_ms is not None else "n/a"
        text = (f"host {self.host}: {self.requests} requests, {self.retries} retries, "
                f"concurrency {self.window:.1f} (max {self.max_window:.1f}, {self.cuts} cuts), median latency {median}")
        return text + (f", given up: {self.given_up}" if self.given_up else "")


@dataclass
class Ticket:
    """One request's claim on a host: its slot (None when refused) and the
    window epoch it was sent under."""

    host: str
    slot: int | None
    epoch: int
    refused: str = ""
    attempt: int = 0
    # The host's fastest time to first byte so far (None: nothing known yet).
    base_s: float | None = None


@dataclass
class _Queue:
    waiters: collections.deque = field(default_factory=collections.deque)
    held: set[int] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task | None = None


def fresh_state(ceiling: int, initial: float = INITIAL_WINDOW) -> dict[str, Any]:
    """A host nothing is known about."""
    window = float(min(initial, ceiling))
    return {"window": window, "ssthresh": float(ceiling), "epoch": 0, "streak": 0, "streak_since": 0.0,
            "pause_until": 0.0, "last_ok": 0.0, "base_s": None, "next": 0.0, "requests": 0, "retries": 0,
            "ok": 0, "images": 0, "failed": 0, "cuts": 0, "max_window": window, "w_max": 0.0, "hist": {}, "given_up": ""}


def host_file_name(host: str) -> str:
    """``host:port`` as a safe file name stem."""
    return re.sub(r"[^a-z0-9.-]", "_", host.lower())


class _Store:
    """Host states in memory, or in ``lock_dir/<host>.state`` files."""

    def __init__(self, ceiling: int, lock_dir: str | None, initial: float = INITIAL_WINDOW) -> None:
        self.ceiling = ceiling
        self.initial = initial
        self.lock_dir = Path(lock_dir) if lock_dir else None
        self._made = False
        self._memory: dict[str, dict[str, Any]] = {}
        self._fds: dict[str, int] = {}

    def path(self, host: str, suffix: str) -> Path:
        assert self.lock_dir is not None
        # Created on first use, so that a dry run writes nothing.
        if not self._made:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            self._made = True
        return self.lock_dir / f"{host_file_name(host)}.{suffix}"

    def _fd(self, host: str) -> int:
        fd = self._fds.get(host)
        if fd is None:
            fd = self._fds[host] = os.open(self.path(host, "state"), os.O_CREAT | os.O_RDWR, 0o600)
        return fd

    def _load(self, fd: int) -> dict[str, Any]:
        raw = os.pread(fd, 1 << 20, 0)
        try:
            state = json.loads(raw) if raw.strip() else None
        except ValueError:
            state = None  # torn by a crash mid-write: start over
        if not isinstance(state, dict):
            return fresh_state(self.ceiling, self.initial)
        return {**fresh_state(self.ceiling, self.initial), **state}

    def read(self, host: str) -> dict[str, Any]:
        if self.lock_dir is None:
            return self._memory.setdefault(host, fresh_state(self.ceiling, self.initial))
        fd = self._fd(host)
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            return self._load(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def update(self, host: str, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply ``change`` to the host's state atomically across processes;
        returns what ``change`` returns."""
        if self.lock_dir is None:
            state = self._memory.setdefault(host, fresh_state(self.ceiling, self.initial))
            out = change(state)
            state["host"] = host
            return out
        fd = self._fd(host)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds
        try:
            state = self._load(fd)
            out = change(state)
            state["host"] = host
            data = json.dumps(state, separators=(",", ":")).encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return out
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def reset(self, host: str) -> None:
        self.update(host, lambda s: (s.clear(), s.update(fresh_state(self.ceiling, self.initial))))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _bucket(seconds: float) -> str:
    ms = max(seconds * 1000.0, _BUCKET_BASE_MS)
    return str(int(math.log(ms / _BUCKET_BASE_MS) / math.log(_BUCKET_RATIO)))


def _median_ms(hist: dict[str, int]) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    seen = 0
    for key in sorted(hist, key=int):
        seen += hist[key]
        if seen * 2 >= total:
            # The bucket's geometric middle: within 5% of any value in it.
            return _BUCKET_BASE_MS * _BUCKET_RATIO ** (int(key) + 0.5)
    return None


def figures_of(host: str, state: dict[str, Any]) -> HostFigures:
    """HostFigures from a host's stored state."""
    return HostFigures(host=host, requests=int(state["requests"]), retries=int(state["retries"]),
                       answered=int(state["ok"]), downloaded=int(state["images"]), failed=int(state["failed"]),
                       window=float(state["window"]), max_window=float(state["max_window"]), cuts=int(state["cuts"]),
                       median_ms=_median_ms(state["hist"]), given_up=str(state["given_up"]))


def read_host_figures(lock_dir: str | os.PathLike[str]) -> list[HostFigures]:
    """Figures of every host in ``lock_dir`` (OUTPUT/.cache/web/hosts), for a
    build summary or a progress display polling while the build runs. The
    names are the files' stems (``127.0.0.1_8000`` for ``127.0.0.1:8000``)."""
    out = []
    for path in sorted(Path(lock_dir).glob("*.state")):
        try:
            state = json.loads(path.read_bytes() or b"null")
        except (OSError, ValueError):
            continue  # being rewritten this instant, or not ours
        if isinstance(state, dict):
            out.append(figures_of(state.get("host") or path.stem, {**fresh_state(1), **state}))
    return out


class HostController:
    """Per-host congestion windows, slots, pacing, pauses and give-up, shared
    across processes through ``lock_dir`` (see the module docstring)."""

    def __init__(self, ceiling: int, lock_dir: str | None, *, backoff_s: float = 0.5, max_backoff_s: float = 60.0,
                 budget_s: float = 120.0, max_failures: int = 20, adaptive: bool = True, seed: int = 0) -> None:
        self.ceiling = ceiling
        self.adaptive = adaptive
        # Not adaptive: the window is the ceiling from the start and never cut.
        self.store = _Store(ceiling, lock_dir, INITIAL_WINDOW if adaptive else float(ceiling))
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.budget_s = budget_s
        self.max_failures = max_failures
        self._rng = random.Random(seed)
        self._queues: dict[str, _Queue] = {}
        self._slot_fds: dict[tuple[str, int], int] = {}

    # ---- slots ------------------------------------------------------------------------

    async def acquire(self, host: str) -> Ticket:
        """Wait until ``host`` is not paused and a slot inside its window is
        free. A ticket with ``refused`` set means the host was given up."""
        queue = self._queues.get(host)
        if queue is None:
            queue = self._queues[host] = _Queue()
        future: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        queue.waiters.append(future)
        if queue.pump is None or queue.pump.done():
            queue.pump = asyncio.ensure_future(self._pump(host, queue))
        else:
            queue.wake.set()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(future.result())
            raise

    def release(self, ticket: Ticket) -> None:
        """Give back the ticket's slot."""
        if ticket.slot is None:
            return
        queue = self._queues[ticket.host]
        fd = self._slot_fds.get((ticket.host, ticket.slot))
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        queue.held.discard(ticket.slot)
        ticket.slot = None
        queue.wake.set()

    def _try_slot(self, host: str, slot: int) -> bool:
        if self.store.lock_dir is None:
            return True
        fd = self._slot_fds.get((host, slot))
        if fd is None:
            fd = self._slot_fds[(host, slot)] = os.open(self.store.path(host, f"slot{slot}"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    async def _pump(self, host: str, queue: _Queue) -> None:
        # One task per host hands out slots in arrival order, so waiting
        # requests do not each poll the lock files.
        try:
            await self._hand_out(host, queue)
        except Exception as exc:  # an unreadable state file: fail the waiters, never strand them
            while queue.waiters:
                waiter = queue.waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)

    async def _hand_out(self, host: str, queue: _Queue) -> None:
        while queue.waiters:
            state = self.store.read(host)
            if state["given_up"]:
                while queue.waiters:
                    waiter = queue.waiters.popleft()
                    if not waiter.done():
                        waiter.set_result(Ticket(host, None, state["epoch"], refused=state["given_up"]))
                return
            pause = state["pause_until"] - time.monotonic()
            if pause > 0:
                # In short steps: another process may give the host up meanwhile.
                await asyncio.sleep(min(pause, 0.25))
                continue
            window = max(1, min(self.ceiling, int(state["window"])))
            for slot in range(window):
                while queue.waiters and queue.waiters[0].done():  # cancelled meanwhile
                    queue.waiters.popleft()
                if not queue.waiters:
                    break
                if slot in queue.held or not self._try_slot(host, slot):
                    continue
                queue.held.add(slot)
                queue.waiters.popleft().set_result(Ticket(host, slot, state["epoch"], base_s=state["base_s"]))
            while queue.waiters and queue.waiters[0].done():
                queue.waiters.popleft()
            if queue.waiters:
                queue.wake.clear()
                # Local releases wake us at once; another process's only by polling.
                timeout = POLL_S if self.store.lock_dir is not None else None
                try:
                    await asyncio.wait_for(queue.wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass

    # ---- pacing -----------------------------------------------------------------------

    async def pace(self, host: str, interval_s: float) -> None:
        """Wait for this host's next start time: requests start at least
        ``interval_s`` apart across all processes (host_rate, Crawl-delay)."""
        if interval_s <= 0:
            return
        now = time.monotonic()

        def book(state: dict[str, Any]) -> float:
            start = max(now, float(state["next"]))
            state["next"] = start + interval_s
            return start

        start = self.store.update(host, book)
        if start > now:
            await asyncio.sleep(start - now)

    # ---- outcomes ---------------------------------------------------------------------

    def succeeded(self, ticket: Ticket, ttfb_s: float, image: bool = True) -> None:
        """A response arrived (any definitive answer; ``image``: one that
        delivered an image): grow the window, or cut it when the time to
        first byte was a spike."""
        now = time.monotonic()

        def change(s: dict[str, Any]) -> None:
            self._count(s, ticket)
            s["ok"] += 1
            s["images"] += int(image)
            s["last_ok"] = now
            s["streak"] = 0
            s["hist"][_bucket(ttfb_s)] = s["hist"].get(_bucket(ttfb_s), 0) + 1
            base = s["base_s"]
            s["base_s"] = ttfb_s if base is None else min(base, ttfb_s)
            if base is not None and ttfb_s > max(SPIKE_FACTOR * base, base + SPIKE_MARGIN_S):
                if ticket.epoch == s["epoch"]:
                    self._cut(s)
                return
            w = s["window"]
            if base is not None and ttfb_s > max(GROW_FACTOR * base, base + GROW_MARGIN_S) and w >= HOLD_FLOOR:
                s["ssthresh"] = min(s["ssthresh"], w)
                return
            if w < s["ssthresh"]:
                step = 1.0
            elif abs(w - s["w_max"]) < 1.0:
                step = 1.0 / (PLATEAU_SLOWDOWN * w)
            else:
                step = 1.0 / w
            s["window"] = min(float(self.ceiling), w + step)
            s["max_window"] = max(s["max_window"], s["window"])

        self.store.update(ticket.host, change)

    def overloaded(self, ticket: Ticket, retry_after_s: float | None, detail: str, *, failure: bool = True) -> bool:
        """An overload signal. Cuts the window when the request was sent under
        the current window, and then (``failure``) counts a failure in the
        host's streak, which pauses it from the second in a row; returns
        whether it cut (then the failure is charged to the URL)."""
        now = time.monotonic()

        def change(s: dict[str, Any]) -> bool:
            self._count(s, ticket)
            if retry_after_s is not None:
                s["pause_until"] = max(s["pause_until"], now + retry_after_s)
            if ticket.epoch != s["epoch"]:
                return False  # part of the burst the last cut already answered
            self._cut(s)
            if failure:
                # The cut answers one overload; pause only a host failing again
                # before any success (backoff from the second failure on).
                self._fail(s, now, detail, pause_from=2)
            return True

        return self.store.update(ticket.host, change)

    def failed(self, ticket: Ticket, detail: str) -> None:
        """A failure that says nothing about load (500, 502, a protocol error):
        pause the host for the backoff delay; no cut."""
        now = time.monotonic()

        def change(s: dict[str, Any]) -> None:
            self._count(s, ticket)
            self._fail(s, now, detail)

        self.store.update(ticket.host, change)

    def refused_means_dead(self, ticket: Ticket) -> bool:
        """A refused connection: overload when the host answered recently or
        this process has other requests to it in flight, else a dead host."""
        queue = self._queues.get(ticket.host)
        others = len(queue.held) - (1 if ticket.slot is not None else 0) if queue else 0
        recent = time.monotonic() - float(self.store.read(ticket.host)["last_ok"]) < ALIVE_S
        return others <= 0 and not recent

    def give_up(self, ticket: Ticket, reason: str) -> None:
        """Give the host up at once (dead host): its queued URLs, in every
        process, fail without a request."""

        def change(s: dict[str, Any]) -> None:
            self._count(s, ticket)
            s["given_up"] = s["given_up"] or reason

        self.store.update(ticket.host, change)

    def note_failed_url(self, host: str) -> None:
        """Count a URL that ended as a download failure."""
        self.store.update(host, lambda s: s.__setitem__("failed", s["failed"] + 1))

    def figures(self, host: str) -> HostFigures:
        """This host's figures so far (all processes)."""
        return figures_of(host, self.store.read(host))

    def reset(self, host: str) -> None:
        """Forget what was learnt about ``host`` (a new build starts low)."""
        self.store.reset(host)

    def close(self) -> None:
        """Release every slot and file this controller holds."""
        for fd in self._slot_fds.values():
            os.close(fd)  # closing drops any flock still held
        self._slot_fds.clear()
        self.store.close()
        for queue in self._queues.values():
            if queue.pump is not None:
                queue.pump.cancel()

    # ---- state changes (under the store's lock) ---------------------------------------

    @staticmethod
    def _count(s: dict[str, Any], ticket: Ticket) -> None:
        s["requests"] += 1
        s["retries"] += 1 if ticket.attempt else 0

    def _cut(self, s: dict[str, Any]) -> None:
        s["w_max"] = s["window"]
        if self.adaptive:
            s["window"] = max(1.0, s["window"] / 2.0)
            s["ssthresh"] = max(1.0, s["window"])
        s["epoch"] += 1
        s["cuts"] += 1

    def _fail(self, s: dict[str, Any], now: float, detail: str, pause_from: int = 1) -> None:
        """One more failure in the host's streak: pause the host for an
        exponential backoff (from the ``pause_from``-th failure of the streak),
        and give it up past the streak or time budget."""
        s["streak"] += 1
        if s["streak"] == 1:
            s["streak_since"] = now
        if s["streak"] >= pause_from:
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (s["streak"] - pause_from)) * (0.5 + self._rng.random())
            s["pause_until"] = max(s["pause_until"], now + delay)
        if self.max_failures and s["streak"] >= self.max_failures:
            s["given_up"] = s["given_up"] or f"{s['streak']} consecutive failures ({detail})"
        elif now - s["streak_since"] > self.budget_s:
            s["given_up"] = s["given_up"] or (
                f"failing for {now - s['streak_since']:.0f}s > host_retry_budget_s={self.budget_s:g} ({detail})")
