"""``build()``: the one entry point of a build, whatever the output.

It validates the config, opens the inputs, runs the one output check, and
hands the work to the local engine (gandata/pipeline/local.py) or, for an
object-store output, to the remote wrapper (gandata/pipeline/remote.py),
which builds locally and uploads manifest-last.
"""

from __future__ import annotations

from gandata.config import BuildConfig
from gandata.pipeline.executors import Executor
from gandata.pipeline.inputs import open_inputs
from gandata.pipeline.local import build_local
from gandata.pipeline.output import check_output, up_to_date_summary
from gandata.pipeline.remote import build_remote
from gandata.pipeline.summary import BuildSummary
from gandata.records import ProgressFn
from gandata.util.remote import is_remote, local_path


def build(config: BuildConfig, progress: ProgressFn | None = None, executor: Executor | None = None) -> BuildSummary:
    """Build the dataset ``config`` describes; returns a summary.

    Raises ConfigError / SourceError for bad options or sources (before any
    work), BuildError when a stage fails; a failed build leaves any previous
    dataset in the output untouched.
    """
    config.validate()
    inputs = open_inputs(config)
    output = config.output.rstrip("/") if is_remote(config.output) else local_path(config.output)
    existing = check_output(output, inputs.fingerprint, config.overwrite)
    # --retry-failed rebuilds an up-to-date dataset: web sources fetch again
    # the URLs that failed (the rest comes from their download cache).
    if existing is not None and not config.retry_failed:
        return up_to_date_summary(output, existing)
    if is_remote(output):
        return build_remote(config, inputs, progress, executor)
    return build_local(config, inputs, progress, executor)
