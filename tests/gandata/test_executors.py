"""The process executor: every task once, results keyed by index, this
process working beside its spawned helpers, errors surfacing."""

from __future__ import annotations

import os
import time

import pytest

from gandata.errors import BuildError
from gandata.pipeline.executors import ProcessExecutor, SerialExecutor, make_executor


def _square_and_pid(x: int) -> tuple[int, int]:
    time.sleep(0.02)  # long enough that the helper gets a share
    return x * x, os.getpid()


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"task {x} failed")
    return x


def test_every_task_once_and_both_processes_work():
    executor = ProcessExecutor(2)
    try:
        results = dict(executor.imap(_square_and_pid, list(range(40))))
        # The pool is reused by the next stage of a build.
        again = dict(executor.imap(_square_and_pid, list(range(5))))
    finally:
        executor.close()
    assert sorted(results) == list(range(40))
    assert all(value == i * i for i, (value, _) in results.items())
    pids = {pid for _, pid in results.values()}
    assert os.getpid() in pids and len(pids) == 2
    assert sorted(again) == list(range(5))


@pytest.mark.parametrize("executor", [ProcessExecutor(2), SerialExecutor()], ids=["process", "serial"])
def test_a_failing_task_raises(executor):
    try:
        with pytest.raises(ValueError, match="task 3 failed"):
            dict(executor.imap(_fail_on_three, list(range(8))))
    finally:
        executor.close()


def test_one_worker_runs_here():
    assert isinstance(make_executor("process", 1), SerialExecutor)
    assert isinstance(make_executor("process", 2), ProcessExecutor)


def _die_in_a_helper(x: int) -> int:
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        os._exit(1)  # a helper killed mid-task (OOM killer, kill -9)
    time.sleep(0.01)
    return x


def test_a_dead_helper_fails_the_stage_without_recursing():
    """A helper that dies breaks the pool; handing out the next tasks must not
    recurse once per remaining task (that hit Python's recursion limit)."""
    executor = ProcessExecutor(2)
    try:
        with pytest.raises(BuildError, match="worker process"):
            for _ in executor.imap(_die_in_a_helper, list(range(3000))):
                pass
    finally:
        executor.close()


def _blas_threads_setting(_: int) -> str | None:
    return os.environ.get("OPENBLAS_NUM_THREADS")


def test_helpers_start_single_threaded_pools_and_leave_this_environment_alone(monkeypatch):
    # numpy's OpenBLAS starts (and spins) a thread per core when a helper
    # imports it, on the core where this process is working.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")
    executor = ProcessExecutor(2)
    try:
        # Task 0 runs here; the others may run in the helper.
        results = dict(executor.imap(_square_and_pid, list(range(20))))
        helper = next(pid for _, pid in results.values() if pid != os.getpid())
        settings = {value for value in dict(executor.imap(_blas_threads_setting, list(range(20)))).values()}
    finally:
        executor.close()
    assert helper != os.getpid()
    assert settings == {"8", "1"}  # this process: untouched; the helper: one thread
    assert os.environ["OPENBLAS_NUM_THREADS"] == "8"


def _helper_pids(pid: int) -> list[int]:
    """This build's spawned helpers (not multiprocessing's resource tracker)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return []
    helpers = []
    for child in children:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            helpers.append(child)
    return helpers


def test_a_helper_killed_mid_build_is_a_one_line_error(tmp_path):
    """The OOM killer or kill -9 taking a helper: the command says so in one
    line (exit 1) and publishes nothing, no traceback."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gandata", "build", "synth:shapes?count=60000", "--size", "32", "-o", str(out),
         "--workers", "2", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    killed = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        helpers = _helper_pids(proc.pid)
        if helpers:
            time.sleep(0.5)  # let it start ingesting
            os.kill(helpers[0], signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    _, stderr = proc.communicate(timeout=300)
    assert killed, "the build ended before its helper could be killed"
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "worker process" in lines[0], stderr
    assert not (out / "manifest.json").exists()


def test_a_script_without_a_main_guard_is_told_how_to_fix_it(tmp_path):
    """Spawned helpers import the main script again; one that calls build()
    at top level would start the build once more inside each helper. The
    helper stops at once and the error says what to change."""
    import subprocess
    import sys

    script = tmp_path / "make_data.py"
    script.write_text(
        "from gandata.config import BuildConfig, SourceSpec\n"
        "from gandata.pipeline import build\n"
        f"build(BuildConfig(sources=(SourceSpec('synth:shapes?count=3000&size=16'),), output={str(tmp_path / 'out')!r},"
        " workers=2))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "An attempt has been made to start a new process" not in result.stderr  # multiprocessing's own
    assert "if __name__ == \"__main__\"" in result.stderr
    assert "BuildError" in result.stderr  # the script's own traceback ends in the library's typed error
