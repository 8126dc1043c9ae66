"""What a TFJob's status and its pods say, read without I/O.

The training operator reports progress as a list of conditions (CONTRACT.md): ``Created``,
``Running``, ``Restarting``, ``Succeeded``, ``Failed``, ``Suspended``. ``job_state`` folds them into
one ``JobState``; ``replica_outcome`` reads a pod's ``tensorflow`` container the same way for every
caller (operator, trigger, UI), so they agree on what happened. A Trainer v2 TrainJob and its pods
reach this module already read as a TFJob's (``rules.trainjobview``, through the hooks).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from airflow_tfjob.model.kube import JobCondition, KubeObject

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
    conditions: tuple[JobCondition, ...] = ()
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


def job_state(tfjob: KubeObject) -> JobState:
    """Read a TFJob object (as a dict) into a ``JobState``."""
    status = tfjob.get("status") or {}
    listed = tuple(c for c in status.get("conditions") or [] if isinstance(c, dict))
    conditions = cast("tuple[JobCondition, ...]", listed)  # as the API returned them
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
    uid: str = ""
    """The pod's uid: the training operator re-creates an evicted or ``ExitCode``-retried replica
    under the same pod name, so only the uid tells the new pod from the dead one."""

    @property
    def pod_key(self) -> str:
        """What tells this pod from another of the same name: its uid (its name if it has none)."""
        return self.uid or self.pod


ACTIVE_DEADLINE_GRACE = 5.0


def active_deadline_at(state: JobState, seconds: float | None) -> float | None:
    """Epoch seconds when ``activeDeadlineSeconds`` runs out (from startTime), plus a grace.

    The operator checks it only when something makes it reconcile, so clients enforce it too.
    """
    if not seconds or not state.start_time:
        return None
    started = datetime.datetime.fromisoformat(state.start_time.replace("Z", "+00:00"))
    return started.timestamp() + seconds + ACTIVE_DEADLINE_GRACE


def replica_name(pod: KubeObject) -> str:
    """``<type>-<index>`` from the operator's labels, falling back to the pod name."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    rtype, index = labels.get(REPLICA_TYPE_LABEL), labels.get(REPLICA_INDEX_LABEL)
    if rtype is not None and index is not None:
        return f"{rtype}-{index}"
    return str((pod.get("metadata") or {}).get("name", "?"))


def replica_index(replica: str) -> int:
    """The index of a ``<type>-<index>`` replica name (``worker-2`` -> 2; 0 without one)."""
    _, _, index = replica.rpartition("-")
    return int(index) if index.isdigit() else 0


def replica_outcome(pod: KubeObject, container: str = "tensorflow") -> ReplicaOutcome:
    """Read the ``container`` status of a pod dict; eviction counts as a failed termination."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name, replica, uid = str(meta.get("name", "")), replica_name(pod), str(meta.get("uid") or "")
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") != container:
            continue
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term:
            evicted = status.get("phase") == "Failed" and status.get("reason") == "Evicted"
            return ReplicaOutcome(
                replica,
                name,
                True,
                term.get("exitCode"),
                "Evicted" if evicted else str(term.get("reason") or ""),
                str(term.get("message") or ""),
                term.get("finishedAt"),
                restarts=int(cs.get("restartCount") or 0),
                uid=uid,
            )
        waiting = (state.get("waiting") or {}).get("reason") or ""
        return ReplicaOutcome(
            replica,
            name,
            False,
            waiting_reason=str(waiting),
            restarts=int(cs.get("restartCount") or 0),
            uid=uid,
        )
    if status.get("phase") == "Failed":  # evicted before or after the container ran
        return ReplicaOutcome(
            replica,
            name,
            True,
            None,
            str(status.get("reason") or "Failed"),
            str(status.get("message") or ""),
            uid=uid,
        )
    waiting = str(status.get("reason") or status.get("phase") or "Pending")
    return ReplicaOutcome(replica, name, False, waiting_reason=waiting, uid=uid)


def replica_counts(tfjob: KubeObject) -> dict[str, int]:
    """Replicas per type from a TFJob manifest or object (``replicas`` defaults to 1)."""
    specs = (tfjob.get("spec") or {}).get("tfReplicaSpecs") or {}
    return {rtype: int((spec or {}).get("replicas", 1)) for rtype, spec in specs.items()}


def output_replica(replica_counts: Mapping[str, int]) -> str:
    """The replica whose termination message is the job's output: chief-0, else master-0 (the
    chief's older name, in templates), else worker-0."""
    if replica_counts.get("Chief"):
        return "chief-0"
    return "master-0" if replica_counts.get("Master") else "worker-0"


def parse_output(message: str) -> Any:
    """The termination message as JSON when it is JSON, else the text (None when empty)."""
    if not message:
        return None
    try:
        return json.loads(message)
    except ValueError:
        return message


class ReplicaLedger:
    """What the pods of one job have shown so far, kept from every pod state seen.

    Kept by every wait's ``rules.follow.Follow`` (the worker, the triggerer, the sensor) and by
    the TFJobs page, so each captures the output and failures the moment a container terminates
    (before ``cleanPodPolicy`` or a TTL can delete the pod). One event loop or thread calls
    ``observe``.
    """

    def __init__(self, output_replica: str) -> None:
        self.output_replica = output_replica
        self.outcomes: dict[str, ReplicaOutcome] = {}
        """Latest outcome per replica (``worker-1``)."""
        self.failures: list[ReplicaOutcome] = []
        """Terminations with a non-zero exit code or an eviction, in the order seen."""
        self.output: ReplicaOutcome | None = None
        """The output replica's first successful termination."""
        self.started = False
        """Whether any replica's container has run."""
        self.finished_pods: set[str] = set()
        """``pod_key`` (uid) of every pod seen ended or deleted: not its name, which a
        re-created replica's pod takes again."""

    @classmethod
    def for_job(cls, tfjob: KubeObject) -> ReplicaLedger:
        """An empty ledger for a TFJob object or manifest (its output replica derived)."""
        return cls(output_replica(replica_counts(tfjob)))

    def observe(self, pod: KubeObject, *, deleted: bool = False) -> ReplicaOutcome:
        """Record one pod state; return its outcome."""
        outcome = replica_outcome(pod)
        previous = self.outcomes.get(outcome.replica)
        self.outcomes[outcome.replica] = outcome
        if outcome.terminated and previous != outcome:
            self._terminated(outcome)
        if deleted or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.finished_pods.add(outcome.pod_key)
        if has_run(pod):
            self.started = True
        return outcome

    def replica_statuses(self) -> dict[str, dict[str, int]]:
        """Per replica type, as its pods last showed: ``active`` (running or waiting),
        ``succeeded``, ``failed``, for a job whose status has none (a TrainJob's)."""
        out: dict[str, dict[str, int]] = {}
        for replica, outcome in sorted(self.outcomes.items()):
            rtype = replica.rpartition("-")[0]
            rtype = {"ps": "PS"}.get(rtype, rtype.capitalize())
            key = "active"
            if outcome.terminated:
                key = "succeeded" if outcome.exit_code == 0 else "failed"
            counts = out.setdefault(rtype, {})
            counts[key] = counts.get(key, 0) + 1
        return out

    def _terminated(self, outcome: ReplicaOutcome) -> None:
        if outcome.exit_code != 0:
            seen = any(
                f.pod_key == outcome.pod_key and f.finished_at == outcome.finished_at
                for f in self.failures
            )
            if not seen:
                self.failures.append(outcome)
        elif outcome.replica == self.output_replica and self.output is None:
            self.output = outcome


def has_run(pod: KubeObject) -> bool:
    """Whether the pod's containers have started at least once (its log can be read)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state or cs.get("restartCount"):
            return True
    return False
