"""Memory figures of a process from /proc/PID/status (Linux), for the benchmarks."""

from __future__ import annotations


def status_kib(field: str, pid: int | str = "self") -> int:
    """A ``/proc/PID/status`` field in KiB (``VmHWM``, ``RssAnon``, ...); 0
    when the process is gone or the field is missing (non-Linux)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
