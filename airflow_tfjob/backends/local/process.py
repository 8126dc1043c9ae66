"""One run of a replica's command: a process group, its output pumped to a file and the task log.

The child starts through a small shim that asks the kernel to SIGKILL it when its parent thread
dies (``PR_SET_PDEATHSIG``), then ``exec``s the command: a task process killed with SIGKILL takes
its replicas with it. The shim is spawned by the supervisor's own thread, which lives as long
as the job (the signal follows the thread that forked, not the process).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TAIL_LINES = 20
SHIM = (
    "import os,sys\n"
    "try:\n"
    " import ctypes\n"
    " ctypes.CDLL(None).prctl(1, 9)\n"  # PR_SET_PDEATHSIG, SIGKILL
    "except (OSError, AttributeError):\n"
    " pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    " os._exit(137)\n"  # the parent is already gone
    "try:\n"
    " os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    " print(f'cannot start {sys.argv[2]!r}: {exc.strerror}', file=sys.stderr, flush=True)\n"
    " os._exit(127)\n"
)
"""Run as ``python -I -S -c SHIM <parent pid> <argv...>``."""

Emit = Callable[[str, str], None]
"""``(replica, line)``: where each output line goes besides the replica's file."""


def exit_code(returncode: int) -> int:
    """A container's exit code: a death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class ReplicaProcess:
    """A replica's command running in its own process group."""

    def __init__(
        self,
        replica: str,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path,
        log_file: Path,
        emit: Emit | None,
    ) -> None:
        self.replica = replica
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.started = time.monotonic()
        cwd.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", SHIM, str(os.getpid()), *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self._proc.pid
        self._pump = threading.Thread(
            target=self._copy, args=(log_file, emit), daemon=True, name=f"tfjob-local-{replica}"
        )
        self._pump.start()

    def _copy(self, log_file: Path, emit: Emit | None) -> None:
        assert self._proc.stdout is not None
        with self._proc.stdout as stream, log_file.open("ab") as out:
            for raw in iter(stream.readline, b""):
                out.write(raw)
                out.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self.tail.append(line)
                if emit is not None:
                    emit(self.replica, line)

    def poll(self) -> int | None:
        """The exit code once the process ended (128 + N for signal N), else ``None``."""
        code = self._proc.poll()
        return None if code is None else exit_code(code)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group (a no-op once it is gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; whether it did."""
        try:
            self._proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def finish_output(self, timeout: float) -> None:
        """Let the output pump reach the end of the stream."""
        self._pump.join(timeout)


def stop_all(
    processes: Sequence[ReplicaProcess], grace: Callable[[ReplicaProcess], float]
) -> list[str]:
    """SIGTERM every process group, SIGKILL those still alive after their grace; return the
    replicas that had to be killed. The groups are signalled even when the leader is gone."""
    for proc in processes:
        proc.signal(signal.SIGTERM)
    killed = []
    start = time.monotonic()
    for proc in processes:
        if not proc.wait(grace(proc) - (time.monotonic() - start)):
            killed.append(proc.replica)
        proc.signal(signal.SIGKILL)  # the rest of the group, if any
        proc.wait(5.0)
    return killed
