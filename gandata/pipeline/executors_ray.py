"""The Ray executor: the parallel stages as Ray tasks on a cluster.

Same contract as the process pool (``imap`` yields ``(task_index, result)``
as tasks finish; results are keyed by index, so completion order never
reaches the output): a Ray build writes the same bytes as a process build.
A task whose worker dies (killed, out of memory, node lost) is re-run by
Ray up to ``max_retries`` times; the ingest and write tasks are idempotent
(they write under temporary names and rename), so a re-run is safe.

The staging area must be on storage every worker sees (a shared file system
on a multi-node cluster); see "Running on a cluster" in the README.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from gandata.errors import BuildError, ConfigError

# Worker deaths are retried this many times before the build fails.
DEFAULT_MAX_RETRIES = 3


def _run_task(fn: Callable[[Any], Any], task: Any) -> Any:
    # One remote function for every stage: ``fn`` may be any picklable
    # callable, and is shipped once per stage through the object store.
    return fn(task)


class RayExecutor:
    """Runs tasks as Ray remote functions.

    ``address`` is passed to ``ray.init`` (``"auto"`` joins the cluster this
    machine belongs to, ``"ray://host:10001"`` a remote one; None starts a
    local instance). When Ray is already initialized in this process (a
    driver script, tests) that instance is used and left running.
    """

    def __init__(self, address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES, max_in_flight: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray: the 'ray' package is not installed (pip install 'gandata[ray]')") from None
        self._ray = ray
        self.address = address
        self.max_retries = max_retries
        self._own_init = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"--ray-address: cannot connect to Ray at {address or '(local)'}: {exc}") from None
            self._own_init = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        # Bounded in-flight tasks keep the driver's memory flat for huge task
        # lists, as the process pool does.
        self.max_in_flight = max_in_flight or max(2, 2 * cpus)

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Submit ``fn(task)`` for each task; yield ``(index, result)`` as each finishes."""
        ray = self._ray
        remote = ray.remote(_run_task).options(max_retries=self.max_retries, num_cpus=1)
        fn_ref = ray.put(fn)
        pending: dict[Any, int] = {}
        next_task = 0
        try:
            while next_task < len(tasks) or pending:
                while next_task < len(tasks) and len(pending) < self.max_in_flight:
                    pending[remote.remote(fn_ref, tasks[next_task])] = next_task
                    next_task += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        # Re-raise the task's own exception (BuildError etc.)
                        # with its own message, as the process pool does.
                        cause = getattr(exc, "cause", None)
                        if isinstance(cause, Exception):
                            raise cause from None
                        raise BuildError(f"--executor ray: task {index} failed: {exc}") from None
                    except ray.exceptions.RayError as exc:
                        raise BuildError(f"--executor ray: task {index} failed after {self.max_retries} retries: {exc}") from None
                    yield index, result
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        """Shut Ray down when this executor started it."""
        if self._own_init and self._ray.is_initialized():
            self._ray.shutdown()
        self._own_init = False
