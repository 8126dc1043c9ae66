"""Run a pod's main container command (:func:`~tests.kubelet.podspec.main_container`) as a
local process.

The command runs in its own process group (and, with pod networking, the pod's network
namespace) with the pod's environment as the operator wrote it (``TF_CONFIG`` included,
unchanged), literal values with ``$(VAR)`` expansion and the downward API's ``fieldRef`` values
(``JOB_COMPLETION_INDEX``, which the Job controller gives as a reference to a label, included),
on top of what the image would give (:data:`IMAGE_ENV`). ``python``/``python3`` means this
interpreter: as the first word, and on ``PATH`` (a TrainJob pod's ``/bin/sh`` entry point execs
``python`` itself). The container's ``terminationMessagePath`` (default
``/dev/termination-log``), wherever it appears in the command or an env value, is replaced by a
file in the replica's own directory (also given as ``$KUBELET_TERMINATION_LOG``); what the
process writes there becomes the termination message. Stdout and stderr go to the kubelet's log
store. A process killed because its pod is deleted still reports how it ended: the pod's terminal
status needs the exit code (143 for a SIGTERM that was not handled).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.kubelet import logstore, podspec
from tests.kubelet.podspec import Obj

DEFAULT_TERMINATION_PATH = "/dev/termination-log"
IMAGE_ENV = {
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "2",
}
"""The environment of the training image every replica stands for: unbuffered Python, and
TensorFlow held to one core per replica (it takes every core of the machine otherwise, and a
test machine has two); a pod's own env wins."""
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL when a pod is deleted."""


@dataclass(frozen=True)
class Outcome:
    """How a container run ended."""

    exit_code: int
    message: str
    killed: bool = False
    """The kubelet stopped it (its pod is being deleted); it did not end by itself."""


class LocalProcess:
    """One run of a pod's command as a local process; :meth:`run` blocks until it ends."""

    def __init__(self, pod: Obj, *, directory: Path, netns: str | None = None) -> None:
        self.pod = pod
        self.netns = netns
        """The pod's network namespace: the command runs there through ``ip netns exec``."""
        self.container = dict(podspec.main_container(pod))
        self.directory = directory
        self.termination_file = directory / "termination-log"

    def argv(self) -> list[str]:
        """The command line, with the termination path mapped and ``python`` resolved."""
        words = [*(self.container.get("command") or []), *(self.container.get("args") or [])]
        if not words:
            name = self.container["name"]
            raise ValueError(f"the {name} container has no command (image entrypoints are unknown)")
        words = [self._map_path(word) for word in words]
        if words[0] in ("python", "python3"):
            words[0] = sys.executable
        return ["ip", "netns", "exec", self.netns, *words] if self.netns else words

    def environment(self) -> dict[str, str]:
        """What an image would give (:data:`IMAGE_ENV`, ``PATH`` with this interpreter first,
        ``HOSTNAME``: ``spec.hostname`` if set, as the kubelet names the pod's host), then the
        container's env in order (``$(VAR)`` expanded, downward API fields resolved), exactly as
        the operator wrote it. Nothing else of the test process's own environment leaks in."""
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = {**IMAGE_ENV, "PATH": path.rstrip(os.pathsep)}
        env["HOSTNAME"] = self.pod["spec"].get("hostname") or self.pod["metadata"]["name"]
        own: dict[str, str] = {}
        for var in self.container.get("env") or []:
            if "value" in var:
                value = _expand(str(var["value"]), own)
            elif (var.get("valueFrom") or {}).get("fieldRef"):
                value = _field(self.pod, var["valueFrom"]["fieldRef"]["fieldPath"])
            else:
                continue  # secrets and config maps: not mounted here
            own[var["name"]] = self._map_path(value)
        env.update(own)
        env["KUBELET_TERMINATION_LOG"] = str(self.termination_file)
        return env

    def _map_path(self, text: str) -> str:
        path = self.container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        return text.replace(path, str(self.termination_file))

    def run(
        self, store: logstore.LogStore, key: logstore.Key, stop: threading.Event,
        *, grace: Callable[[], float],
    ) -> Outcome:  # fmt: skip
        """Run to the end, or until ``stop`` is set (then kill the process group: an
        :class:`Outcome` that says ``killed``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.termination_file.unlink(missing_ok=True)
        try:
            argv = self.argv()
            proc = subprocess.Popen(
                argv,
                cwd=self.directory,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            store.write(key, f"failed to start container: {exc}")
            return Outcome(exit_code=128, message=str(exc))
        readers = [_pump(stream, store, key) for stream in (proc.stdout, proc.stderr)]
        killed = False
        while proc.poll() is None:
            if stop.wait(0.05):
                kill_group(proc, grace())
                killed = True
                break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left behind die with the "container"
        for reader in readers:
            reader.join(timeout=5)
        code = 128 - proc.returncode if proc.returncode < 0 else proc.returncode
        return Outcome(exit_code=code, message=self._message(), killed=killed)

    def _message(self) -> str:
        try:
            return self.termination_file.read_bytes()[-4096:].decode(errors="replace")
        except FileNotFoundError:
            return ""


def _pump(
    stream: IO[bytes] | None, store: logstore.LogStore, key: logstore.Key
) -> threading.Thread:
    def copy() -> None:
        assert stream is not None
        with stream:
            for line in iter(stream.readline, b""):
                store.write(key, line)

    thread = threading.Thread(target=copy, daemon=True, name=f"log-{key[1]}")
    thread.start()
    return thread


def kill_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds, and reap the process."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
        proc.wait()


_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def _expand(value: str, defined: dict[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion: earlier env entries only, ``$$`` escapes."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return defined.get(match.group(1), match.group(0))

    return _REF.sub(one, value)


def _field(pod: Obj, path: str) -> str:
    """A downward-API ``fieldRef`` value of this pod."""
    meta: dict[str, Any] = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName"),
        "status.podIP": (pod.get("status") or {}).get("podIP", "127.0.0.1"),
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    return ""
