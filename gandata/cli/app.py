"""The ``gandata`` command group and the error handling every command shares:
library errors (``GandataError``) become a one-line message on stderr and a
non-zero exit."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from gandata import __version__
from gandata.errors import GandataError


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a GandataError or an interrupt becomes a one-line error and an exit."""
    try:
        return fn()
    except GandataError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; re-run the same command to resume", code=130)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="gandata")
def main() -> None:
    """gandata: prepare clean, balanced, sharded image datasets for GAN training.

    Start with `gandata build` (no arguments: a procedural shapes dataset in
    ./gandata-out), then `gandata verify` and `gandata stats` on the result.
    """
