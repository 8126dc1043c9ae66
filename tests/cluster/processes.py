"""Child processes (etcd, kube-apiserver, kube-controller-manager, the training operator) that
cannot outlive the test run.

Three layers make sure of it, because a test run ends in many ways:

- every child gets ``PR_SET_PDEATHSIG`` = SIGKILL, so the kernel kills it when the process that
  started it dies, even by SIGKILL (nothing else runs then);
- ``atexit`` stops whatever is still running when the interpreter exits normally or after an
  uncaught exception (pytest interrupted with Ctrl-C ends this way);
- SIGTERM and SIGINT handlers stop the children, then hand the signal to the previous handler.

Children run in their own session so that a Ctrl-C on the terminal reaches only the Python
process, which then stops them in order (kube-apiserver before etcd).
PDEATHSIG fires when the *thread* that forked dies: start clusters from the main thread or from a
thread that lives as long as the cluster.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class ClusterError(RuntimeError):
    """The test cluster could not be built or started; the message says which part and why."""


_live: list[subprocess.Popen[bytes]] = []
_lock = threading.Lock()
_installed = False

SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log_path`` (and ``env`` added to
    ours); it dies with us."""
    _install_handlers()
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - no threads fork here
        )
    with _lock:
        _live.append(proc)
    log.debug("started pid %d: %s", proc.pid, argv[0])
    return proc


def stop(proc: subprocess.Popen[bytes], *, grace: float = 3.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Idempotent."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.0f s; killing it", proc.pid, grace)
            proc.kill()
            proc.wait()
    with _lock:
        if proc in _live:
            _live.remove(proc)


def stop_all() -> None:
    """Stop every child still running, newest first (kube-apiserver before its etcd)."""
    with _lock:
        procs = list(reversed(_live))
    for proc in procs:
        stop(proc)


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB, from /proc (0.0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _chain(signum: int, previous: SignalHandler) -> Callable[[int, FrameType | None], None]:
    def handler(sig: int, frame: FrameType | None) -> None:
        stop_all()
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler


def _install_handlers() -> None:
    global _installed  # noqa: PLW0603 - once per process
    if _installed:
        return
    _installed = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; atexit still holds
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if previous != signal.SIG_IGN:  # an ignored signal (nohup, `cmd &`) stays ignored
            signal.signal(signum, _chain(signum, previous))
