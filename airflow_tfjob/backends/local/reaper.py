"""Find and kill a run's processes by the marker in their environment, wherever they went.

Process groups cover a replica and the children it keeps in its group; a child that started a
session of its own escapes them, but not its inherited environment. ``/proc/<pid>/environ`` shows
the environment a process started with, so every descendant of a replica carries the marker.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

MARKER_ENV = "AIRFLOW_TFJOB_LOCAL_RUN"
"""``<owner>/<uid>``: the task instance's digest, then the run's uid."""
_PROC = Path("/proc")


def marked(prefix: str) -> list[int]:
    """PIDs of our user's processes whose marker starts with ``prefix``."""
    needle = f"{MARKER_ENV}={prefix}".encode()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if any(var.startswith(needle) for var in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def kill(prefix: str) -> list[int]:
    """SIGKILL every process marked ``prefix``; return their PIDs."""
    pids = marked(prefix) if _PROC.is_dir() else []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids
