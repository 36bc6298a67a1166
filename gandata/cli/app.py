"""The ``gandata`` command group and the error handling every command shares.

Both command lines (gandata and gantrain) report errors the same way: one line
``error: MESSAGE`` on stderr, and an exit status that says whose fault it was:

- 0: done;
- 1: the operation ran and failed (a build that could not complete, a dataset
  that does not verify, training that diverged, a missing package);
- 2: the command line or what it names cannot be used (a bad option, a usage
  error, a missing or malformed source, dataset, run or config file);
- 130: interrupted (Ctrl-C); re-running the same command resumes.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn

import click

from gandata import __version__
from gandata.errors import BuildError, GandataError, VerifyError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Library errors that mean "the operation failed" rather than "the input is
# wrong"; every other GandataError names a bad option or input (exit 2).
_FAILED_ERRORS: tuple[type[GandataError], ...] = (BuildError, VerifyError)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def exit_code_of(exc: GandataError) -> int:
    """The exit status a library error maps to (see the module docstring)."""
    return EXIT_FAILED if isinstance(exc, _FAILED_ERRORS) else EXIT_USAGE


def guarded(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a GandataError, an operating-system error or an interrupt
    becomes a one-line error and an exit."""
    try:
        return fn()
    except GandataError as exc:
        fail(str(exc), exit_code_of(exc))
    except OSError as exc:
        # Disk full, a read-only folder, a path in /proc: name the file.
        fail(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", EXIT_FAILED)
    except MemoryError:
        fail("out of memory; lower --workers or --max-pixels", EXIT_FAILED)
    except KeyboardInterrupt:
        fail("interrupted; re-run the same command to resume", code=EXIT_INTERRUPTED)


class ErrorStyleGroup(click.Group):
    """A click group whose own errors (usage, bad parameters) and
    ClickExceptions print as ``error: ...`` like the library errors, instead of
    click's ``Error: ...``; usage errors exit 2, other ClickExceptions with
    their own code. Shared by gandata and gantrain so both speak alike."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            if exc.ctx is not None:
                click.echo(exc.ctx.get_usage(), err=True)
                click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
            fail(exc.format_message(), EXIT_USAGE)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("interrupted", EXIT_INTERRUPTED)
        # click returns the code of an explicit ctx.exit(code) (--help,
        # --version: 0); a command's own return value is not an exit status.
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=ErrorStyleGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="gandata")
def main() -> None:
    """gandata: prepare clean, balanced, sharded image datasets for GAN training.

    Start with `gandata build` (no arguments: a procedural shapes dataset in
    ./gandata-out), then `gandata verify` and `gandata stats` on the result,
    and `gantrain train gandata-out -o runs/first` to train the reference GAN
    on it.

    Errors print as `error: ...` on stderr. Exit status: 0 done; 1 the
    operation failed (build, verify); 2 a bad option or input; 130
    interrupted.
    """
