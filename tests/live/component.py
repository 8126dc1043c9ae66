"""One Airflow component (``airflow scheduler``, ``triggerer``, ...) as a process of its own.

Each start runs the command in a new session (``start_new_session=True``), output appended to the
component's log file, so that a Ctrl-C on the terminal reaches only pytest and so that everything
the component forks can be found again by session id: LocalExecutor workers, the task supervisors
and their task runners (which ``setpgid`` into process groups of their own, so killing the
leader's process group is not enough), the triggerer's trigger runner, log servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def session_members(sid: int) -> list[int]:
    """PIDs of every live process in session ``sid`` (from ``/proc/<pid>/stat``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class Component:
    """An Airflow CLI command run as a restartable process.

    :param name: ``"scheduler"``, ``"triggerer"``, ...; the log is ``<logs>/<name>.log``.
    :param argv: the command.
    :param env: its whole environment.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], logs: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log = logs / f"{name}.log"
        """The log file; every start appends to it, after a ``=== start N`` marker line."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at = 0.0
        """``time.time()`` of the latest start."""

    @property
    def pid(self) -> int | None:
        """PID of the running command (the session leader), ``None`` when not running."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def alive(self) -> bool:
        """The command itself is running."""
        return self.pid is not None

    def start(self) -> Component:
        """Start the command (again); fails if it is still running."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.kill()  # leftovers of a previous run (orphaned workers) go first
        self.starts += 1
        self.started_at = time.time()
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts} at {time.ctime()}: {self.name}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the command only (not to what it forked)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, *, grace: float = 15.0) -> int | None:
        """Send ``signum`` to the command, wait up to ``grace`` seconds for it to exit, then
        SIGKILL whatever is left of its session. Returns the exit status (``None``: killed)."""
        if self.proc is None:
            return None
        self.send_signal(signum)
        try:
            status: int | None = self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            status = None
        self.kill()
        return status

    def kill(self) -> None:
        """SIGKILL the whole session at once (a crash), and reap the command. Idempotent."""
        if self.proc is None:
            return
        sid = self.proc.pid
        for _ in range(20):  # a process may fork while we kill; repeat until none is left
            members = session_members(sid)
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.poll()
            time.sleep(0.05)
        self.proc.wait(timeout=10)

    def session(self) -> list[int]:
        """PIDs of the command and everything it forked that is still running."""
        return session_members(self.proc.pid) if self.proc is not None else []

    def read_log(self, *, current: bool = False) -> str:
        """The log (``current``: only since the latest start)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        if current and self.starts:
            marker = f"\n=== start {self.starts} at "
            text = text[text.rfind(marker) :] if marker in text else text
        return text
