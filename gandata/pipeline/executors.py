"""Executors run the embarrassingly parallel stages (ingest, write).

The pipeline only needs ``imap``: apply a picklable top-level function to a
list of picklable tasks and yield ``(task_index, result)`` as each completes.
Results are keyed by index, so completion order never leaks into the output.
A Ray or cluster executor implements the same one method.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import queue
import sys
import threading
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol, Sequence

from gandata.errors import BuildError

HELPER_LOST = (
    "a worker process of this build stopped unexpectedly (killed, e.g. by the out-of-memory killer: try fewer "
    "--workers or a lower --max-pixels); nothing was published, and re-running the same command resumes"
)

MAIN_GUARD = (
    "gandata: this spawned build helper re-ran the main script {script}, which starts a build at its top level; "
    'put the script\'s build() call under `if __name__ == "__main__":` (every helper imports the main script)'
)


def stop_if_starting_helper() -> None:
    """Ends this process when it is a spawned helper still importing the
    main script (multiprocessing re-runs a script's top level in every
    spawned process): a script that calls build() unguarded would otherwise
    start a second build, on the same output, inside each helper. Exiting is
    the only safe step at that point, and SystemExit prints its message
    without a traceback; the parent then reports the lost helper."""
    # _inheriting is how multiprocessing itself tells this phase apart
    # (spawn._check_not_importing_main); no public API says it, and
    # parent_process() is set only after the main script has run.
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # The script runs as __mp_main__ while a helper imports it.
        main = sys.modules.get("__mp_main__") or sys.modules.get("__main__")
        raise SystemExit(MAIN_GUARD.format(script=getattr(main, "__file__", None) or "(unknown)"))


def _result(future: Future) -> Any:
    """A helper's result; a pool broken by a helper that died (killed, out
    of memory) becomes a BuildError that says so."""
    try:
        return future.result()
    except BrokenExecutor:
        raise BuildError(HELPER_LOST) from None


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


# Thread pools a helper's libraries would start, each at one thread: the
# build's parallelism is its processes. numpy's OpenBLAS starts a thread per
# core when it loads, which spins on the other core for about 0.1 s (in a
# 2-worker build: on the core where this process is working) and again after
# every threaded call; Arrow sizes its pool from OMP_NUM_THREADS.
_HELPER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _HelperProcess(multiprocessing.context.SpawnProcess):
    """A spawned helper whose thread pools start with one thread (a child
    takes its environment from this process when it is started)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        with _environment(_HELPER_ENV):
            return multiprocessing.context.SpawnProcess._Popen(process_obj)


class _HelperContext(multiprocessing.context.SpawnContext):
    Process = _HelperProcess


class ProcessExecutor:
    """``workers`` processes: this one and ``workers - 1`` spawned helpers,
    reused across the stages of one build.

    Helpers are started with 'spawn': forking a parent that holds pyarrow or
    torch thread pools can deadlock, and spawn behaves the same on every OS.
    Starting one and importing the pipeline costs about half a second, so
    this process works too, from the first task on, instead of waiting for
    its helpers. Each helper holds one task at a time and is handed the next
    the moment it finishes (from the pool's completion callback, not when
    this process next looks up from its own task), so no helper idles while
    tasks remain and none ends with a backlog that others could have shared.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(2, workers)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers - 1, mp_context=_HelperContext())
        return self._pool

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        pool = self._get_pool()
        lock = threading.Lock()
        finished: queue.SimpleQueue[tuple[int, Future]] = queue.SimpleQueue()
        state = {"next": 0, "stop": False}

        def take() -> int | None:
            with lock:
                if state["stop"] or state["next"] >= len(tasks):
                    return None
                index = state["next"]
                state["next"] += 1
                return index

        def hand_out() -> None:
            index = take()
            if index is None:
                return
            try:
                future = pool.submit(fn, tasks[index])
            except RuntimeError as exc:  # the pool is shutting down or broken (a helper died)
                failed: Future = Future()
                failed.set_exception(exc)
                # Queued as is, handing out nothing more: a callback on a done
                # future runs at once, so chaining here would recurse once per
                # remaining task.
                finished.put((index, failed))
                return
            # Runs in the pool's thread when the helper is done: queue the
            # result for this process and give the helper its next task.
            future.add_done_callback(lambda f, index=index: (finished.put((index, f)), hand_out()))

        delivered = 0
        try:
            # This process keeps the first task: a stage of one task (a single
            # shard to write) then never waits on a helper's IPC and imports.
            first = take()
            for _ in range(self.workers - 1):
                hand_out()
            if first is not None:
                delivered += 1
                yield first, fn(tasks[first])
            while delivered < len(tasks):
                while not finished.empty():
                    index, future = finished.get()
                    delivered += 1
                    yield index, _result(future)
                index = take()
                if index is not None:
                    delivered += 1
                    yield index, fn(tasks[index])
                elif delivered < len(tasks):
                    index, future = finished.get()
                    delivered += 1
                    yield index, _result(future)
        finally:
            with lock:
                state["stop"] = True

    def close(self) -> None:
        if self._pool is not None:
            # Not waiting: helpers exit on their own (~40 ms) while this
            # process goes on (the pipeline publishes); the pool's management
            # thread reaps them, and interpreter exit joins it.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def make_executor(kind: str, workers: int, ray_address: str | None = None) -> Executor:
    """The executor for ``--executor`` and ``--workers``: N workers are this
    process and N - 1 spawned ones; one worker runs everything here (no
    start-up cost, and tracebacks stay readable)."""
    if kind == "ray":
        # Imported here: ray is an optional extra. Ray sizes itself from the
        # cluster, so --workers does not apply.
        from gandata.pipeline.executors_ray import RayExecutor

        return RayExecutor(ray_address)
    if kind == "serial" or workers <= 1:
        return SerialExecutor()
    return ProcessExecutor(workers)
