"""The only package that knows the stage order.

``build()`` (``run``) validates the config, opens the inputs (``inputs``), runs
the one output check (``output``) and hands the work to the local engine
(``local``) or, for object-store outputs, to ``remote``; ``stages`` turns the
parallel stages into executor tasks, ``fill`` runs the synthetic-fill rounds,
``executors`` runs tasks serially, on a process pool or on Ray, and ``audit``
runs ``gandata stats`` on raw sources.
"""

from gandata.pipeline.inputs import (
    BuildInputs,
    build_fingerprint,
    generator_size,
    open_inputs,
    open_sources,
    open_synth_probe,
)
from gandata.pipeline.local import ingest_only
from gandata.pipeline.run import build
from gandata.pipeline.summary import BuildSummary
from gandata.records import ProgressFn

__all__ = ["BuildInputs", "BuildSummary", "generator_size", "open_inputs", "ProgressFn", "build", "build_fingerprint", "ingest_only", "open_sources", "open_synth_probe"]
