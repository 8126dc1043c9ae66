"""In-memory container logs, the part of a kubelet that the log endpoint reads.

Replica runners write lines here as their scripted (or real) containers produce them; the kubelet
stand-in reads them back with the kubelet's own query semantics (``follow``, ``tailLines``,
``sinceTime``, ``previous``...). One entry per container run: an in-place restart keeps the old
run as "previous", a recreated pod (same name, new uid) starts from nothing, and what the old
pod's runner still does (write, end, forget) no longer touches the new pod's logs.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

Key = tuple[str, str, str]
"""``(namespace, pod, container)``."""


@dataclass(frozen=True)
class Line:
    """One log line as the container runtime recorded it."""

    time: datetime.datetime
    """When the line was written (UTC)."""
    text: bytes
    """The line including its trailing newline."""

    def render(self, *, timestamps: bool) -> bytes:
        """The bytes the kubelet sends for this line."""
        if not timestamps:
            return self.text
        return rfc3339nano(self.time).encode() + b" " + self.text


@dataclass
class ContainerRun:
    """The log of one run of a container."""

    lines: list[Line] = field(default_factory=list)
    """Everything written so far, in order."""
    terminated: bool = False
    """Set when the run ended; a follow stream ends when it has sent every line."""


def rfc3339nano(when: datetime.datetime) -> str:
    """Go's ``time.RFC3339Nano`` of a UTC time (fraction without trailing zeros)."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{when.microsecond:06d}000".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def now() -> datetime.datetime:
    """The current UTC time."""
    return datetime.datetime.now(datetime.UTC)


class LogStore:
    """Thread-safe store of container runs, keyed by namespace, pod and container."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._current: dict[Key, ContainerRun] = {}
        self._previous: dict[Key, ContainerRun] = {}
        self._owner: dict[Key, str] = {}
        """The uid of the pod whose runs a key holds."""

    def start(self, key: Key, uid: str, *, restart: bool) -> None:
        """Begin a run of pod ``uid``; ``restart`` keeps the last run as ``previous`` (in-place
        restart of the same pod)."""
        with self._cond:
            old = self._current.get(key)
            if old is not None:
                old.terminated = True
            self._previous.pop(key, None)
            if restart and old is not None and self._owner.get(key) == uid:
                self._previous[key] = old
            self._owner[key] = uid
            self._current[key] = ContainerRun()
            self._cond.notify_all()

    def _run_of(self, key: Key, uid: str | None) -> ContainerRun | None:
        if uid is not None and self._owner.get(key) != uid:
            return None
        return self._current.get(key)

    def write(self, key: Key, text: str | bytes, uid: str | None = None) -> None:
        """Append ``text`` (one or more lines; a missing final newline is added) to the current
        run (of pod ``uid``, when given)."""
        data = text.encode() if isinstance(text, str) else text
        with self._cond:
            run = self._run_of(key, uid)
            if run is None or run.terminated:
                return
            stamp = now()
            for piece in data.splitlines(keepends=True):
                line = piece if piece.endswith(b"\n") else piece + b"\n"
                run.lines.append(Line(time=stamp, text=line))
            self._cond.notify_all()

    def terminate(self, key: Key, uid: str | None = None) -> None:
        """Mark the current run of the container (of pod ``uid``, when given) as ended."""
        with self._cond:
            run = self._run_of(key, uid)
            if run is not None:
                run.terminated = True
            self._cond.notify_all()

    def forget_pod(self, namespace: str, pod: str, uid: str) -> None:
        """Drop every run of every container of pod ``uid`` (it was deleted)."""
        with self._cond:
            keys = [k for k, v in self._owner.items() if k[:2] == (namespace, pod) and v == uid]
            for key in keys:
                del self._owner[key]
                for table in (self._current, self._previous):
                    if key in table:
                        table.pop(key).terminated = True
            self._cond.notify_all()

    def lookup(self, key: Key, *, previous: bool) -> ContainerRun | None:
        """The current (or previous) run of a container, if there is one."""
        with self._cond:
            return (self._previous if previous else self._current).get(key)

    def tail(self, key: Key, uid: str | None = None) -> list[str]:
        """The text of the current run's lines (for termination messages and tests)."""
        with self._cond:
            run = self._run_of(key, uid)
            return [line.text.decode(errors="replace") for line in (run.lines if run else [])]

    def follow(self, run: ContainerRun, start: int, closed: threading.Event) -> Iterator[Line]:
        """Yield the lines of ``run`` from index ``start`` until it terminates or ``closed``."""
        index = start
        while not closed.is_set():
            with self._cond:
                if index >= len(run.lines):
                    if run.terminated:
                        return
                    self._cond.wait(timeout=0.2)
                    continue
                batch = run.lines[index:]
            index += len(batch)
            yield from batch
