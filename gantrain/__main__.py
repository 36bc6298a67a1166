"""``python -m gantrain`` (and ``torchrun -m gantrain``) runs the CLI."""

from gantrain.cli import main

main(prog_name="gantrain")
