"""``build()``: the one entry point of a build, whatever the output.

It validates the config, opens the inputs, runs the one output check, and
hands the work to the local engine (gandata/pipeline/local.py) or, for an
object-store output, to the remote wrapper (gandata/pipeline/remote.py),
which builds locally and uploads manifest-last.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

from gandata.config import BuildConfig
from gandata.errors import BuildError, ConfigError
from gandata.pipeline.executors import Executor, stop_if_starting_helper
from gandata.pipeline.inputs import open_inputs
from gandata.pipeline.local import build_local
from gandata.pipeline.lock import output_lock
from gandata.pipeline.output import check_output, mark_output, up_to_date_summary
from gandata.pipeline.remote import build_remote
from gandata.pipeline.summary import BuildSummary
from gandata.records import ProgressFn
from gandata.sources.base import Source
from gandata.util.remote import is_remote, local_path


def _refuse_output_in_source(output: str, sources: Sequence[Source]) -> None:
    """An output inside (or equal to) a source folder would be listed as
    input by the next build, and the build's files mixed with the user's."""
    out = os.path.realpath(output)
    for source in sources:
        # Sources come wrapped (provenance); the folder source has a root.
        root = getattr(getattr(source, "inner", source), "root", None)
        if not isinstance(root, str) or is_remote(root) or not os.path.isdir(root):
            continue
        real = os.path.realpath(root)
        if os.path.commonpath([out, real]) == real:
            raise ConfigError(
                f"--output: {output} is inside the source folder {root}; a build writes its dataset next to, "
                "not inside, its inputs: choose an output outside it"
            )


def _io_error(exc: OSError, output: str) -> BuildError:
    """An operating-system error (disk full, read-only folder, a path in
    /proc) as a one-line error naming the file."""
    where = exc.filename or output
    return BuildError(f"{where}: {exc.strerror or exc} (building {output}; what was published before is intact)")


def build(config: BuildConfig, progress: ProgressFn | None = None, executor: Executor | None = None) -> BuildSummary:
    """Build the dataset ``config`` describes; returns a summary.

    Raises ConfigError / SourceError for bad options or sources (before any
    work), BuildError when a stage fails; a failed build leaves any previous
    dataset in the output untouched.
    """
    stop_if_starting_helper()
    config.validate()
    inputs = open_inputs(config)
    remote = is_remote(config.output)
    output = config.output.rstrip("/") if remote else local_path(config.output)
    if not remote:
        _refuse_output_in_source(output, inputs.sources)
    # Two builds into one local output would interleave their files; the
    # lock is held from the output check to the published manifest.
    lock: Any = nullcontext() if remote else output_lock(Path(output))
    try:
        with lock:
            existing = check_output(output, inputs.fingerprint, config.overwrite)
            # --retry-failed rebuilds an up-to-date dataset: web sources fetch again
            # the URLs that failed (the rest comes from their download cache).
            if existing is not None and not config.retry_failed:
                return up_to_date_summary(output, existing)
            mark_output(output)
            if remote:
                return build_remote(config, inputs, progress, executor)
            return build_local(config, inputs, progress, executor)
    except OSError as exc:
        raise _io_error(exc, output) from None
