"""The ``gandata`` command group and the error handling every command shares:
library errors (``GandataError``) become a one-line message on stderr and a
non-zero exit.

Exit codes (README, docs/SECURITY.md): 0 success; 1 the work failed (a build
error such as an I/O error or a build that kept no sample, a dataset that
fails ``verify``); 2 bad input or usage (an option, config file, source or
dataset on disk that is invalid; click's usage errors); 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from gandata import __version__
from gandata.errors import BuildError, GandataError, VerifyError

# The work itself failed (as opposed to bad input or usage: exit 2).
FAILED = 1
BAD_INPUT = 2


def fail(message: str, code: int = BAD_INPUT) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a GandataError, an operating-system error or an interrupt
    becomes a one-line error and an exit."""
    try:
        return fn()
    except (BuildError, VerifyError) as exc:
        fail(str(exc), FAILED)
    except GandataError as exc:
        fail(str(exc))
    except OSError as exc:
        # Disk full, a read-only folder, a path in /proc: name the file.
        fail(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", FAILED)
    except MemoryError:
        fail("out of memory; lower --workers or --max-pixels", FAILED)
    except KeyboardInterrupt:
        fail("interrupted; re-run the same command to resume", code=130)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="gandata")
def main() -> None:
    """gandata: prepare clean, balanced, sharded image datasets for GAN training.

    Start with `gandata build` (no arguments: a procedural shapes dataset in
    ./gandata-out), then `gandata verify` and `gandata stats` on the result.
    """
