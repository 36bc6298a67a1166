"""Typed errors raised by the gandata library.

The library never prints or exits: it raises one of these, and the CLI turns
them into a message naming the file, URL or option at fault.
"""


class GandataError(Exception):
    """Base class of every error gandata raises on purpose."""


class ConfigError(GandataError):
    """A build option or config file value is invalid (names the option)."""


class SourceError(GandataError):
    """A source URI cannot be opened or listed (names the source)."""


class FormatError(GandataError):
    """A dataset on disk does not follow the gandata format (names the file)."""


class VerifyError(GandataError):
    """A built dataset does not match its manifest (names the first bad file)."""


class BuildError(GandataError):
    """A build could not complete; what was already built is left intact."""
