"""Executors run the embarrassingly parallel stages (ingest, write).

The pipeline only needs ``imap``: apply a picklable top-level function to a
list of picklable tasks and yield ``(task_index, result)`` as each completes.
Results are keyed by index, so completion order never leaks into the output.
A Ray or cluster executor implements the same one method.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Protocol, Sequence


class Executor(Protocol):
    """Runs ``fn`` over ``tasks``; yields ``(index, result)`` as they finish."""

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs every task in this process, in order (debugging, tiny builds)."""

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, task in enumerate(tasks):
            yield i, fn(task)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of worker processes, reused across stages of one build.

    Workers are started with 'spawn': forking a parent that holds pyarrow or
    torch thread pools can deadlock, and spawn behaves the same on every OS.
    At most ``2 * workers`` tasks are in flight, so the parent never queues
    the whole task list (and its memory) at once.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        pool = self._get_pool()
        pending: dict[Any, int] = {}
        next_task = 0
        try:
            while next_task < len(tasks) or pending:
                while next_task < len(tasks) and len(pending) < 2 * self.workers:
                    pending[pool.submit(fn, tasks[next_task])] = next_task
                    next_task += 1
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    yield index, future.result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def make_executor(kind: str, workers: int, ray_address: str | None = None) -> Executor:
    """The executor for ``--executor`` and ``--workers``; one worker runs in
    this process (no start-up cost, and tracebacks stay readable)."""
    if kind == "ray":
        # Imported here: ray is an optional extra. Ray sizes itself from the
        # cluster, so --workers does not apply.
        from gandata.executors_ray import RayExecutor

        return RayExecutor(ray_address)
    if kind == "serial" or workers <= 1:
        return SerialExecutor()
    return ProcessExecutor(workers)
