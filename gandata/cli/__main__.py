"""``python -m gandata.cli``: the gandata command line."""

from gandata.cli import main

main()
