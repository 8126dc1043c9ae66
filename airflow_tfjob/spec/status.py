"""What a TFJob's status and its pods say, read without I/O.

The training operator reports progress as a list of conditions (CONTRACT.md): ``Created``,
``Running``, ``Restarting``, ``Succeeded``, ``Failed``, ``Suspended``. ``job_state`` folds them into
one ``JobState``; ``replica_outcome`` reads a pod's ``tensorflow`` container the same way for every
caller (operator, trigger, UI), so they agree on what happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Phase = Literal["Pending", "Created", "Running", "Restarting", "Succeeded", "Failed", "Suspended"]
TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed"})
_PRECEDENCE: tuple[Phase, ...] = (
    "Failed",
    "Succeeded",
    "Suspended",
    "Restarting",
    "Running",
    "Created",
)

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"


@dataclass(frozen=True)
class JobState:
    """A TFJob's progress as the operator last reported it."""

    phase: Phase
    """The most significant true condition; ``Pending`` before the operator has seen the job."""
    reason: str = ""
    """The condition's machine-readable reason, e.g. ``TFJobFailed``."""
    message: str = ""
    """The condition's human-readable message."""
    conditions: tuple[dict[str, Any], ...] = ()
    """All conditions, as the API returned them."""
    replica_statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per type: ``active``, ``succeeded``, ``failed``."""
    start_time: str | None = None
    completion_time: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Succeeded or Failed: the operator will not change it any more."""
        return self.phase in TERMINAL

    def summary(self) -> str:
        """One line for the task log: phase and per-type replica counts."""
        parts = []
        for rtype, counts in sorted(self.replica_statuses.items()):
            shown = ", ".join(
                f"{k} {counts[k]}" for k in ("active", "succeeded", "failed") if counts.get(k)
            )
            parts.append(f"{rtype}: {shown or 'none yet'}")
        return f"{self.phase}" + (f" ({'; '.join(parts)})" if parts else "")


def job_state(tfjob: Mapping[str, Any]) -> JobState:
    """Read a TFJob object (as a dict) into a ``JobState``."""
    status = tfjob.get("status") or {}
    conditions = tuple(c for c in status.get("conditions") or [] if isinstance(c, dict))
    true = {c.get("type"): c for c in conditions if c.get("status") == "True"}
    phase: Phase = next((p for p in _PRECEDENCE if p in true), "Pending")
    chosen = true.get(phase, {})
    return JobState(
        phase=phase,
        reason=str(chosen.get("reason") or ""),
        message=str(chosen.get("message") or ""),
        conditions=conditions,
        replica_statuses={
            k: dict(v or {}) for k, v in (status.get("replicaStatuses") or {}).items()
        },
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
    )


@dataclass(frozen=True)
class ReplicaOutcome:
    """How a replica's ``tensorflow`` container ended (or that it has not)."""

    replica: str
    """``worker-1``, ``chief-0``: the log prefix and the name in messages."""
    pod: str
    terminated: bool
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    """The termination message (``/dev/termination-log``)."""
    finished_at: str | None = None
    waiting_reason: str = ""
    """Why the container is not running yet (``ImagePullBackOff`` ...)."""
    restarts: int = 0


def replica_name(pod: Mapping[str, Any]) -> str:
    """``<type>-<index>`` from the operator's labels, falling back to the pod name."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    rtype, index = labels.get(REPLICA_TYPE_LABEL), labels.get(REPLICA_INDEX_LABEL)
    if rtype is not None and index is not None:
        return f"{rtype}-{index}"
    return str((pod.get("metadata") or {}).get("name", "?"))


def replica_outcome(pod: Mapping[str, Any], container: str = "tensorflow") -> ReplicaOutcome:
    """Read the ``container`` status of a pod dict; eviction counts as a failed termination."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name, replica = str(meta.get("name", "")), replica_name(pod)
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") != container:
            continue
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term:
            return ReplicaOutcome(
                replica,
                name,
                True,
                term.get("exitCode"),
                str(term.get("reason") or ""),
                str(term.get("message") or ""),
                term.get("finishedAt"),
                restarts=int(cs.get("restartCount") or 0),
            )
        waiting = (state.get("waiting") or {}).get("reason") or ""
        return ReplicaOutcome(
            replica,
            name,
            False,
            waiting_reason=str(waiting),
            restarts=int(cs.get("restartCount") or 0),
        )
    if status.get("phase") == "Failed":  # evicted before or after the container ran
        return ReplicaOutcome(
            replica,
            name,
            True,
            None,
            str(status.get("reason") or "Failed"),
            str(status.get("message") or ""),
        )
    waiting = str(status.get("reason") or status.get("phase") or "Pending")
    return ReplicaOutcome(replica, name, False, waiting_reason=waiting)


def output_replica(replica_counts: Mapping[str, int]) -> str:
    """The replica whose termination message is the job's output: chief-0, else worker-0."""
    return "chief-0" if replica_counts.get("Chief") else "worker-0"


def parse_output(message: str) -> Any:
    """The termination message as JSON when it is JSON, else the text (None when empty)."""
    if not message:
        return None
    try:
        return json.loads(message)
    except ValueError:
        return message
