"""Typed errors raised by the gantrain library.

The library never prints or exits: it raises one of these and the CLI turns it
into a message. Each message names the option, file or run at fault.
"""


class GantrainError(Exception):
    """Base class of every error gantrain raises on purpose."""


class ConfigError(GantrainError):
    """A training, sampling or evaluation option is invalid (names the option)."""


class DataError(GantrainError):
    """The dataset cannot be used for training (wrong size, no labels, unreadable)."""


class RunError(GantrainError):
    """A run directory or checkpoint is missing, incompatible or damaged."""


class NonFiniteError(GantrainError):
    """A loss or a weight became NaN/Inf; training stopped.

    ``last_good`` is the path of the last checkpoint written before the
    failure (None when none was written yet).
    """

    def __init__(self, message: str, last_good: str | None = None):
        super().__init__(message)
        self.last_good = last_good


class EvalError(GantrainError):
    """Evaluation cannot run (no classifier possible, missing extra, bad weights)."""
