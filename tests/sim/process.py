"""Run a pod's ``tensorflow`` container command as a local process.

Later features need real code inside "pods". The command runs in its own process group with the
pod's environment on top of ours: ``TF_CONFIG`` has every address rewritten to a free localhost
port (shared by all replicas of the job, so they can find each other), ``python``/``python3`` as
the first word means this interpreter, and the container's ``terminationMessagePath`` (default
``/dev/termination-log``), wherever it appears in the command or an env value, is replaced by a
file in the replica's own directory (also given as ``$SIM_TERMINATION_LOG``); what the process
writes there becomes the termination message. Stdout and stderr go to the kubelet's log store.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.sim import logstore, model
from tests.sim.model import Obj

DEFAULT_TERMINATION_PATH = "/dev/termination-log"
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL when a pod is deleted."""


@dataclass
class PortBook:
    """Free localhost ports per ``TF_CONFIG`` address, shared by a simulator's replicas."""

    ports: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def local(self, address: str) -> str:
        """``127.0.0.1:<port>`` standing in for a ``<pod>.<ns>.svc:<port>`` address."""
        with self.lock:
            if address not in self.ports:
                self.ports[address] = _free_port()
            return f"127.0.0.1:{self.ports[address]}"

    def rewrite(self, tf_config: str) -> str:
        """``TF_CONFIG`` with every cluster address made local."""
        config = json.loads(tf_config)
        cluster = config.get("cluster") or {}
        for kind, addresses in cluster.items():
            cluster[kind] = [self.local(address) for address in addresses]
        return json.dumps(config, separators=(",", ":"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Outcome:
    """How a container run ended."""

    exit_code: int
    message: str


def tensorflow_container(pod: Obj) -> Obj:
    """The ``tensorflow`` container of a pod spec."""
    for container in pod["spec"]["containers"]:
        if container["name"] == model.CONTAINER:
            return dict(container)
    raise LookupError(f"pod {pod['metadata']['name']} has no tensorflow container")


class LocalProcess:
    """One run of a pod's command as a local process; :meth:`run` blocks until it ends."""

    def __init__(self, pod: Obj, *, directory: Path, ports: PortBook) -> None:
        self.container = tensorflow_container(pod)
        self.directory = directory
        self.termination_file = directory / "termination-log"
        self.ports = ports

    def argv(self) -> list[str]:
        """The command line, with the termination path mapped and ``python`` resolved."""
        words = [*(self.container.get("command") or []), *(self.container.get("args") or [])]
        if not words:
            raise ValueError(
                "the tensorflow container has no command (image entrypoints are unknown)"
            )
        words = [self._map_path(word) for word in words]
        if words[0] in ("python", "python3"):
            words[0] = sys.executable
        return words

    def environment(self) -> dict[str, str]:
        """Our environment, then the container's literal env values, then the simulator's."""
        env = dict(os.environ)
        for var in self.container.get("env") or []:
            if "value" in var:
                env[var["name"]] = self._map_path(str(var["value"]))
        if "TF_CONFIG" in env and "TF_CONFIG" in {
            v["name"] for v in self.container.get("env") or []
        }:
            env["TF_CONFIG"] = self.ports.rewrite(env["TF_CONFIG"])
        env["SIM_TERMINATION_LOG"] = str(self.termination_file)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _map_path(self, text: str) -> str:
        path = self.container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        return text.replace(path, str(self.termination_file))

    def run(
        self, store: logstore.LogStore, key: logstore.Key, stop: threading.Event
    ) -> Outcome | None:
        """Run to the end (an :class:`Outcome`) or until ``stop`` is set (``None``)."""
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
        while proc.poll() is None:
            if stop.wait(0.05):
                kill_group(proc)
                return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left behind die with the "container"
        for reader in readers:
            reader.join(timeout=5)
        code = proc.returncode
        return Outcome(exit_code=128 - code if code < 0 else code, message=self._message())

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


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after :data:`KILL_GRACE`, and reap the process."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
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
