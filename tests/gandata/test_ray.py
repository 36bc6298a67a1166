"""The Ray executor against a real local Ray instance (2 CPUs).

Marked ``ray``: part of the default run, and kept to two builds that share
one Ray instance so Ray starts once per run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest

ray = pytest.importorskip("ray")

from gandata.config import BuildConfig, ImageConfig, OutputConfig, SourceSpec  # noqa: E402
from gandata.errors import BuildError  # noqa: E402
from gandata.pipeline import build  # noqa: E402
from gandata.pipeline.executors_ray import RayExecutor  # noqa: E402
from gandata.write.shards import write_shard  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # The task wrapper below lives in this test module, which Ray workers
    # cannot import by name: ship it by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()


def _config(dest: Path, executor: str, workers: int = 2) -> BuildConfig:
    return BuildConfig(
        sources=(SourceSpec("synth:shapes?count=160"),),
        output=str(dest),
        image=ImageConfig(size_px=16),
        out=OutputConfig(shard_size=48),
        workers=workers,
        executor=executor,
    )


def _files(out: Path) -> dict[str, bytes]:
    """Every file of a built dataset except the manifest (which records the
    executor and output path), by relative path."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*")) if p.is_file() and p.name != "manifest.json"
    }


@pytest.fixture(scope="module")
def process_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("proc") / "ds"
    build(_config(out, "process"))
    files = _files(out)
    assert sum(name.startswith("shards/") for name in files) == 4
    return files


def test_ray_build_is_byte_identical_to_process_build(ray_local: None, tmp_path: Path, process_build: dict[str, bytes]) -> None:
    out = tmp_path / "ray"
    summary = build(_config(out, "ray"))
    assert summary.num_samples == 160
    assert _files(out) == process_build


class _DieOnce:
    """Wraps a task function; the first call of task ``victim`` kills its
    worker process outright (no exception, no cleanup), as an OOM kill or a
    lost node would."""

    def __init__(self, fn: Callable[[Any], Any], marker_dir: str, victim: int) -> None:
        self.fn, self.marker_dir, self.victim = fn, marker_dir, victim

    def __call__(self, task: Any) -> Any:
        if getattr(task, "index", None) == self.victim:
            marker = os.path.join(self.marker_dir, "killed")
            with open(os.path.join(self.marker_dir, "attempts"), "a") as fh:
                fh.write("x")
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
        return self.fn(task)


class _KillingRayExecutor(RayExecutor):
    def __init__(self, marker_dir: Path) -> None:
        super().__init__()
        self.marker_dir = str(marker_dir)

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if fn is write_shard:
            fn = _DieOnce(fn, self.marker_dir, victim=1)
        return super().imap(fn, tasks)


def test_killed_ray_task_is_retried_and_output_is_identical(
    ray_local: None, tmp_path: Path, process_build: dict[str, bytes]
) -> None:
    out = tmp_path / "ray"
    executor = _KillingRayExecutor(tmp_path)
    build(_config(out, "ray"), executor=executor)
    # The worker died once mid-write; Ray re-ran the task on a new worker.
    assert (tmp_path / "killed").exists()
    assert (tmp_path / "attempts").read_text() == "xx"
    assert _files(out) == process_build


def test_cli_executor_ray_builds_and_ray_address_needs_it(ray_local: None, tmp_path: Path, process_build: dict[str, bytes]) -> None:
    from click.testing import CliRunner

    from gandata.cli import main

    out = tmp_path / "cli"
    args = ["build", "synth:shapes?count=160", "-o", str(out), "--size", "16", "--shard-size", "48", "-q"]
    result = CliRunner().invoke(main, [*args, "--executor", "ray"])
    assert result.exit_code == 0, result.output
    assert _files(out) == process_build
    result = CliRunner().invoke(main, [*args, "--ray-address", "auto"])
    assert result.exit_code != 0 and "--ray-address: only meaningful with --executor ray" in result.output


def _fail_on_two(x: int) -> int:
    if x == 2:
        raise BuildError("task 2: disk full")
    return x * 10


def test_task_error_surfaces_as_the_task_own_exception(ray_local: None) -> None:
    executor = RayExecutor()
    assert sorted(executor.imap(_fail_on_two, [0, 1])) == [(0, 0), (1, 10)]
    with pytest.raises(BuildError) as info:
        list(executor.imap(_fail_on_two, [0, 1, 2, 3]))
    assert str(info.value) == "task 2: disk full"
    executor.close()
    assert ray.is_initialized()  # not ours to shut down
