"""The ``gandata`` command line: printing, progress bars and error messages.

One module per command group: ``build``, ``clean``, ``stats``, ``dataset``
(verify, preview, export); ``options`` makes the flags from the option table,
``progress`` draws the bars, ``app`` holds the group and the error handling.
The library itself never prints.
"""

from gandata.cli.app import main
from gandata.cli.build import build
from gandata.cli.clean import clean
from gandata.cli.dataset import export, preview, verify
from gandata.cli.stats import stats

for command in (build, clean, verify, stats, preview, export):
    main.add_command(command)

__all__ = ["main"]
