"""``python -m gandata``: the gandata command line."""

from gandata.cli import main

main()
