"""``gandata clean``: the cleaning audit of raw sources, with the image and
cleaning options of ``gandata build`` (the same table)."""

from __future__ import annotations

from typing import Any

import click

from gandata.cli.app import guarded
from gandata.cli.options import GroupedCommand, merge_flags, table_options
from gandata.cli.progress import PhaseBars
from gandata.config import build_config_from_mapping, load_config_file


@click.command(cls=GroupedCommand, epilog="Example:\n\n  gandata clean ./photos --report audit/ --size 64\n\n  gandata clean ./photos --report audit/ --near-dup-radius 8 --min-std 5")
@click.argument("sources", nargs=-1)
@click.option("--report", "report_dir", required=True, type=click.Path(file_okay=False), help="Directory for report.md, summary.json, issues.parquet and grid-<reason>.png.")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), help="TOML (or YAML) build config; flags override it.")
@click.option("--keep-staging", is_flag=True, default=False, help="Keep REPORT/.staging (the decoded images) after the report.")
@table_options("clean")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def clean(sources: tuple[str, ...], report_dir: str, config_file: str | None, keep_staging: bool, quiet: bool, **flags: Any) -> None:
    """Audit SOURCES without building: run ingest and the cleaning checks and
    write a report into REPORT (counts per reason and class, score
    percentiles, example grids with each duplicate beside the copy kept, and
    issues.parquet with every image's scores). Run it before choosing
    thresholds; the same flags then tune `gandata build`.
    """
    from gandata.pipeline.audit import clean_report

    def resolve() -> Any:
        data: dict[str, Any] = load_config_file(config_file) if config_file else {}
        data.pop("output", None)  # a build config's output is not the report's
        if sources:
            data["sources"] = list(sources)
        return build_config_from_mapping(merge_flags(flags, data, "clean"))

    config = guarded(resolve)
    bars = PhaseBars(quiet)
    try:
        summary = guarded(lambda: clean_report(config, report_dir, progress=bars, keep_staging=keep_staging))
    finally:
        bars.close()
    if quiet:
        return
    click.echo(f"{summary.report_dir}: {summary.num_inputs} inputs, {summary.num_kept} would be kept")
    for reason, count in summary.reasons.items():
        click.echo(f"  {reason}: {count}")
    for line in summary.would_stop:
        click.echo(f"  would stop a build: {line}")
    click.echo(f"  report: {summary.report_dir}/report.md, issues.parquet, {len(summary.grids)} grid(s)")
