"""Which modules a piece of code imports, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def imports_module(code: str, module: str) -> bool:
    """Whether running ``code`` in a fresh Python process leaves ``module``
    in ``sys.modules`` (lazy imports that cost every new worker time)."""
    script = f"{code}\nimport sys\nprint({module!r} in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1] == "True"
