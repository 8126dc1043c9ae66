"""What happens to each replica of a simulated TFJob, scripted by the test.

A test says, per ``(job, replica type, index)``, what each run of the replica's container does
(``tensorflow`` in a TFJob's pod, ``node`` in a TrainJob's, where the job is the TrainJob and type
and index come from the provider's layout: :func:`tests.kubelet.podspec.replica_of`): how long it
runs, how it ends, what it logs. Runs are consumed in order, one per container start (an
in-place restart or a recreated pod); the last one repeats. Replicas nobody scripted get
:func:`default_fate`: chief, workers and evaluators succeed after a short run, PS never exit, as
real parameter servers do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LogLine:
    """A log line written at a fixed offset into the run."""

    at: float
    """Seconds after the container started."""
    text: str
    """The line (without newline)."""


@dataclass(frozen=True)
class Fate:
    """One run of a replica's ``tensorflow`` container."""

    duration: float = 0.2
    """Seconds the container runs before it ends."""
    exit_code: int | None = 0
    """Exit code when it ends; ``None``: it runs until its pod is deleted."""
    message: str = ""
    """Termination message (what the container wrote to ``/dev/termination-log``)."""
    logs: Sequence[str | LogLine] = ()
    """Log lines: plain strings are spread evenly over ``duration``."""
    pending_for: float = 0.0
    """Seconds the pod stays Pending (ContainerCreating) before the container starts."""
    never_starts: bool = False
    """The pod stays Pending for ever (image never pulled)."""
    evicted: bool = False
    """At the end of ``duration`` the kubelet evicts the pod: phase Failed, reason Evicted."""
    real: bool = False
    """Run the pod's ``tensorflow`` command as a local process instead of following this
    script; ``duration``, ``exit_code``, ``message`` and ``logs`` are then ignored."""

    def timed_logs(self) -> list[LogLine]:
        """Every log line with its offset, in time order."""
        plain = [text for text in self.logs if isinstance(text, str)]
        step = self.duration / len(plain) if plain and self.exit_code is not None else 0.0
        spread = [LogLine(at=i * step, text=text) for i, text in enumerate(plain)]
        fixed = [line for line in self.logs if isinstance(line, LogLine)]
        return sorted(spread + fixed, key=lambda line: line.at)


RUNS_FOR_EVER = Fate(exit_code=None)
"""A container that never exits on its own (a parameter server)."""
REAL = Fate(real=True)
"""Run the pod's real command as a local process."""


def default_fate(replica_type: str) -> Fate:
    """What an unscripted replica does: PS run for ever, everything else exits 0."""
    return RUNS_FOR_EVER if replica_type.lower() == "ps" else Fate()


ReplicaKey = tuple[str, str, int]
"""``(job name, replica type lowercased, index)``."""


@dataclass
class Script:
    """Fates per replica, and how many runs each replica has used up (one per namespace)."""

    real: bool = False
    """Unscripted replicas run their pod's real command (a cluster started by hand), instead of
    :func:`default_fate` (what a test namespace gets)."""
    defaults: dict[str, tuple[Fate, ...]] = field(default_factory=dict)
    fates: dict[ReplicaKey, tuple[Fate, ...]] = field(default_factory=dict)
    runs: dict[ReplicaKey, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_fate(self, job: str, replica_type: str, index: int, *fates: Fate) -> None:
        """Script the runs of one replica (one ``Fate`` per container start; the last repeats)."""
        if not fates:
            raise ValueError("give at least one Fate")
        with self.lock:
            self.fates[(job, replica_type.lower(), index)] = tuple(fates)

    def set_default_fate(self, replica_type: str, *fates: Fate) -> None:
        """Script every unscripted replica of a type (``"*"``: of any type)."""
        with self.lock:
            self.defaults[replica_type.lower()] = tuple(fates)

    def next_run(self, key: ReplicaKey) -> tuple[int, Fate]:
        """The number (0-based) and fate of the replica's next container run."""
        with self.lock:
            fates = self.fates.get(key) or self._default(key[1])
            attempt = self.runs.get(key, 0)
            self.runs[key] = attempt + 1
        return attempt, fates[min(attempt, len(fates) - 1)]

    def _default(self, replica_type: str) -> tuple[Fate, ...]:
        found = self.defaults.get(replica_type) or self.defaults.get("*")
        return found or ((REAL,) if self.real else (default_fate(replica_type),))
