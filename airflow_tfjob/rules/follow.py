"""The rules of following one job to its end, without I/O: one set for every way of waiting.

The Kubernetes backend's follower (``backends/kubernetes/follower.py``, run by a synchronous task
on its worker and by ``TFJobTrigger`` in the triggerer) and the sensor's pokes feed what they
read here: the job's object as it changes (``job``), its pods (``pod``), the job's
disappearance (``gone``). They ask what is due:
how long they may wait (``seconds_left``), whether a limit has passed and what to say and do
(``expired``), whether the pods seen account for the end (``explained``), and the outcome
(``result``, ``failure``).

The rules, the same everywhere:

- the start-up timeout counts from the job's ``creationTimestamp``, so a restarted worker or
  triggerer resets nothing;
- a job has *started* once a replica's container ran (seen in a pod), or its own status says a
  replica is or was active (a job adopted long after its start is not held to the start-up
  timeout before its pods are seen);
- ``activeDeadlineSeconds`` counts from ``status.startTime`` plus a grace
  (``status.active_deadline_at``), the task's deadline is absolute;
- a finished job is *explained* once the pods seen show a success's output or a failure's
  failing replica; until then its pods are read once more.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, NoReturn

from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import report, status

LOG_DRAIN_SECONDS = 15.0
"""How long the logs of a finished job's replicas may take to be read to their end."""
DELETED = "was deleted while the task waited for it"
REPLACED = "was replaced by another job of the same name"
DELETED_AT_START, DELETED_AT_LIMIT = "the job was deleted", "it was deleted"


class Lost(Exception):
    """The job is gone, or another job took its name: it cannot be followed any more."""


@dataclass(frozen=True)
class Limits:
    """What ends a wait early. Times are epoch seconds."""

    deadline: float | None = None
    """The task's (``execution_timeout`` minus a margin) or the sensor's (``timeout``)."""
    active_deadline_seconds: float | None = None
    """The job's ``runPolicy.activeDeadlineSeconds``, enforced here too."""
    startup_timeout: float | None = None
    """Seconds from the job's creation for a replica to run."""
    owned: bool = True
    """The job is the task's: delete it when a limit passes (a sensor's is not)."""
    target_states: tuple[str, ...] = ()
    """Phases that end the wait besides Succeeded and Failed (a sensor's target)."""
    awaited: tuple[str, ...] = ("Succeeded",)
    """The phases a sensor waits for (what its timeout message names)."""


@dataclass(frozen=True)
class Expiry:
    """A limit passed: what to say, and whether the job is to be deleted."""

    kind: Literal["startup", "deadline"]
    message: str
    delete: bool


class Follow:
    """Following one job: what has been seen of it, and what is due."""

    def __init__(self, obj: KubeObject, limits: Limits, uid: str | None = None) -> None:
        """``uid``: the job's, when known before (a namesake with another is not ours)."""
        meta = obj["metadata"]
        self.name, self.namespace, self.uid = meta["name"], meta["namespace"], meta["uid"]
        if uid is not None and uid != self.uid:
            raise Lost(f"TFJob {self.where} {REPLACED}")
        self.limits = limits
        self.state = status.job_state(obj)
        self.ledger = status.ReplicaLedger.for_job(obj)
        created = meta.get("creationTimestamp")
        self.startup_at: float | None = None
        if limits.startup_timeout and created:
            began = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            self.startup_at = began.timestamp() + limits.startup_timeout

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    def job(self, obj: KubeObject) -> bool:
        """A new view of the job; True when its phase or replica counts changed (log it)."""
        if (obj.get("metadata") or {}).get("uid") != self.uid:
            raise Lost(f"TFJob {self.where} {REPLACED}")
        state = status.job_state(obj)
        changed = (state.phase, state.replica_statuses) != (
            self.state.phase,
            self.state.replica_statuses,
        )
        self.state = state
        return changed

    def gone(self) -> NoReturn:
        """The job was deleted (not by us)."""
        raise Lost(f"TFJob {self.where} {DELETED}")

    def pod(self, pod: KubeObject, *, deleted: bool = False) -> status.ReplicaOutcome:
        """A pod of the job as seen now (``deleted``: its last state)."""
        return self.ledger.observe(pod, deleted=deleted)

    @property
    def started(self) -> bool:
        state = self.state
        if self.ledger.started or state.phase in ("Running", "Restarting", "Succeeded", "Failed"):
            return True
        ran = ("active", "succeeded", "failed")
        return any(counts.get(k) for counts in state.replica_statuses.values() for k in ran)

    @property
    def done(self) -> bool:
        """Finished, or at one of the target states."""
        return self.state.is_terminal or self.state.phase in self.limits.target_states

    def _active_deadline_at(self) -> float | None:
        return status.active_deadline_at(self.state, self.limits.active_deadline_seconds)

    def seconds_left(self, now: float) -> float:
        """Until the nearest limit (``inf``: none)."""
        active = self._active_deadline_at() if self.limits.owned else None
        ends = [d for d in (self.limits.deadline, active) if d]
        if self.startup_at and not self.started:
            ends.append(self.startup_at)
        return min(ends) - now if ends else float("inf")

    def expired(self, now: float, *, ended: str | None = None) -> Expiry | None:
        """The limit that has passed, if any: the start-up timeout first, then the deadlines.
        ``ended``: what became of an owned job, when not deleted (its deletion may fail)."""
        owned, phase = self.limits.owned, self.state.phase
        if self.startup_at and not self.started and now >= self.startup_at:
            seconds = self.limits.startup_timeout or 0.0
            message = report.not_started_message(
                self.where, seconds, self.ledger.outcomes.values(), ended=ended or DELETED_AT_START
            )
            return Expiry("startup", message, delete=owned)
        if self.limits.deadline and now >= self.limits.deadline:
            if not owned:
                wanted = " or ".join(self.limits.awaited)
                return Expiry(
                    "deadline",
                    f"TFJob {self.where} did not reach {wanted} before the sensor's timeout "
                    f"({phase})",
                    delete=False,
                )
            message = report.deadline_message(self.where, phase, ended=ended or DELETED_AT_LIMIT)
            return Expiry("deadline", message, delete=True)
        active = self._active_deadline_at()
        if owned and active is not None and now >= active:
            seconds = self.limits.active_deadline_seconds or 0.0
            return Expiry(
                "deadline",
                f"TFJob {self.where} ran past runPolicy.activeDeadlineSeconds={seconds:.0f} "
                f"({phase}) and the training operator did not stop it; {ended or DELETED_AT_LIMIT}",
                delete=True,
            )
        return None

    def explained(self) -> bool:
        """Whether the pods seen account for the job's end (else read them once more)."""
        if self.state.phase == "Succeeded":
            return self.ledger.output is not None
        if self.state.phase == "Failed":
            return bool(self.ledger.failures)
        return True

    def result(self) -> report.TaskResult:
        """The XCom ``return_value``."""
        obj: KubeObject = {
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid}
        }
        state = self.state
        if not state.replica_statuses:  # a TrainJob's: from its pods
            state = replace(state, replica_statuses=self.ledger.replica_statuses())
        return report.result(obj, state, self.ledger.output)

    def failure(self, tail: Callable[[status.ReplicaOutcome], list[str]]) -> str | None:
        """Why the job failed (failing replicas, the earliest one's message or last log lines,
        the condition), ``None`` unless it did."""
        if self.state.phase != "Failed":
            return None
        return report.failure_message(self.where, self.state, self.ledger.failures, tail)
