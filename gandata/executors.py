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
    """``workers`` processes: this one and ``workers - 1`` spawned helpers,
    reused across the stages of one build.

    Helpers are started with 'spawn': forking a parent that holds pyarrow or
    torch thread pools can deadlock, and spawn behaves the same on every OS.
    Starting one and importing the pipeline costs about half a second, so
    this process works too, from the first task on, instead of waiting for
    its helpers: that start-up overlaps with useful work. At most two tasks
    per helper are queued, so the parent never queues the whole task list
    (and its memory) at once; at the end it takes back queued tasks no helper
    has started, so nobody idles while one process works through a backlog.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(2, workers)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers - 1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        pool = self._get_pool()
        queue_limit = 2 * (self.workers - 1)
        pending: dict[Any, int] = {}
        next_task = 0
        try:
            while next_task < len(tasks) or pending:
                while next_task < len(tasks) and len(pending) < queue_limit:
                    pending[pool.submit(fn, tasks[next_task])] = next_task
                    next_task += 1
                for future in [f for f in pending if f.done()]:
                    yield pending.pop(future), future.result()
                if next_task < len(tasks):
                    index, next_task = next_task, next_task + 1
                    yield index, fn(tasks[index])
                    continue
                # Nothing left to hand out: run here what no helper has started.
                stolen = [f for f in pending if f.cancel()]
                for future in sorted(stolen, key=pending.__getitem__):
                    index = pending.pop(future)
                    yield index, fn(tasks[index])
                if pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def make_executor(kind: str, workers: int, ray_address: str | None = None) -> Executor:
    """The executor for ``--executor`` and ``--workers``: N workers are this
    process and N - 1 spawned ones; one worker runs everything here (no
    start-up cost, and tracebacks stay readable)."""
    if kind == "ray":
        # Imported here: ray is an optional extra. Ray sizes itself from the
        # cluster, so --workers does not apply.
        from gandata.executors_ray import RayExecutor

        return RayExecutor(ray_address)
    if kind == "serial" or workers <= 1:
        return SerialExecutor()
    return ProcessExecutor(workers)
