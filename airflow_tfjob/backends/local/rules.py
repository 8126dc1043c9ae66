"""The training operator's decisions (CONTRACT.md) for replicas that are local processes.

Pure: what an exit means under a restart policy, when the job has succeeded, and the TFJob
``status`` the operator would have written (conditions, replica counts, times), so the task's
XCom and failure messages are built by the same code as on Kubernetes.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from airflow_tfjob.model.kube import KubeObject

Decision = Literal["restart", "recreate", "succeeded", "failed"]
CHIEF_TYPES = ("Chief", "Master")


def after_exit(restart_policy: str, exit_code: int) -> Decision:
    """``restart``: in place, counted against ``backoffLimit``; ``recreate``: a new pod, not
    counted (ExitCode with a retryable code, >= 128); else the replica's final state."""
    if restart_policy == "Always":
        return "restart"
    if exit_code == 0:
        return "succeeded"
    if restart_policy == "OnFailure":
        return "restart"
    if restart_policy == "ExitCode" and exit_code >= 128:
        return "recreate"
    return "failed"


def past_backoff_limit(limit: int | None, restarts: int) -> bool:
    """The operator's ``PastBackoffLimit``: in-place restarts reached the limit."""
    if limit is None:
        return False
    return restarts > 0 if limit == 0 else restarts >= limit


def succeeded(
    counts: Mapping[str, int], done: Iterable[tuple[str, int]], success_policy: str | None
) -> bool:
    """Whether the job succeeded, given the ``(type, index)`` replicas that exited 0 for good:
    every chief with a chief; else worker 0, or every worker under ``AllWorkers``."""
    done = set(done)
    chief = next((t for t in CHIEF_TYPES if counts.get(t)), None)
    if chief:
        return all((chief, i) in done for i in range(counts[chief]))
    workers = counts.get("Worker", 0)
    if not workers:
        return False  # a job with neither chief nor worker never succeeds
    if success_policy == "AllWorkers":
        return all(("Worker", i) in done for i in range(workers))
    return ("Worker", 0) in done


def stamp(when: datetime.datetime) -> str:
    """A Kubernetes timestamp (whole seconds, UTC)."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobStatus:
    """The ``status`` the operator would write: ``Running`` and ``Restarting`` replace each other,
    ``Succeeded``/``Failed`` turn ``Running`` False, and nothing changes once finished."""

    def __init__(
        self,
        key: str,
        counts: Mapping[str, int],
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.key, self.clock = key, clock
        self.value: dict[str, Any] = {
            "conditions": [],
            "replicaStatuses": {rtype: {} for rtype in counts},
        }
        self._set("Created", "TFJobCreated", f"TFJob {key} is created.")
        self.value["startTime"] = stamp(clock())

    @property
    def finished(self) -> bool:
        """Succeeded or Failed."""
        return any(
            c["type"] in ("Succeeded", "Failed") and c["status"] == "True"
            for c in self.value["conditions"]
        )

    def count(self, rtype: str, *, active: int, succeeded: int, failed: int) -> None:
        """Set one type's replica counts (zeros are left out, as the operator does)."""
        counts = {"active": active, "succeeded": succeeded, "failed": failed}
        self.value["replicaStatuses"][rtype] = {k: v for k, v in counts.items() if v}

    def running(self) -> None:
        """The chief (or, without one, a worker) is active."""
        self._set("Running", "TFJobRunning", f"TFJob {self.key} is running.")

    def restarting(self, rtype: str) -> None:
        """A replica of ``rtype`` failed and is being restarted."""
        message = f"TFJob {self.key} is restarting because {rtype} replica(s) failed."
        self._set("Restarting", "TFJobRestarting", message)

    def job(self, manifest: KubeObject, namespace: str, uid: str) -> KubeObject:
        """The TFJob object of ``manifest`` with this status, as the operator would show it."""
        return {
            "apiVersion": manifest.get("apiVersion", "kubeflow.org/v1"),
            "kind": "TFJob",
            "metadata": {**manifest["metadata"], "namespace": namespace, "uid": uid},
            "spec": manifest["spec"],
            "status": {
                **self.value,
                "conditions": [dict(c) for c in self.value["conditions"]],
                "replicaStatuses": {k: dict(v) for k, v in self.value["replicaStatuses"].items()},
            },
        }

    def succeed(self) -> None:
        """The success policy is met."""
        self._finish("Succeeded", "TFJobSucceeded", f"TFJob {self.key} successfully completed.")

    def fail(self, message: str) -> None:
        """The job failed for good."""
        self._finish("Failed", "TFJobFailed", message)

    def _finish(self, kind: str, reason: str, message: str) -> None:
        if self.finished:
            return
        self.value["completionTime"] = stamp(self.clock())
        self._set(kind, reason, message)

    def _set(self, kind: str, reason: str, message: str) -> None:
        if self.finished:
            return
        current = next((c for c in self.value["conditions"] if c["type"] == kind), None)
        if current and current["status"] == "True" and current["reason"] == reason:
            return
        now = stamp(self.clock())
        kept = []
        for cond in self.value["conditions"]:
            other = cond["type"]
            if other == kind or {kind, other} == {"Running", "Restarting"}:
                continue
            turned_off = kind in ("Succeeded", "Failed") and other == "Running"
            kept.append(
                {**cond, "status": "False", "lastTransitionTime": now} if turned_off else cond
            )
        kept.append(
            {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }
        )
        self.value["conditions"] = kept
