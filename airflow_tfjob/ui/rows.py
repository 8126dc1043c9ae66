"""What the TFJobs page shows, read without I/O from TFJob-shaped job objects and their pods.

A row per job (state, age, duration, replica counts per type, the task instance it belongs to)
and a detail view (conditions timeline, each replica's pod, a replica's last log lines, and for a
failed job the failure report the task gave, rebuilt from the pods still there).
The task identity comes from the annotations the operator writes (unabridged, unlike labels);
which jobs are shown at all, ``app`` decides (``naming.labelled_identity``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypedDict
from urllib.parse import quote

from airflow_tfjob.model import naming
from airflow_tfjob.model.kube import JobCondition, KubeObject, ObjectMeta
from airflow_tfjob.model.naming import TaskIdentity
from airflow_tfjob.rules import orphans, report, status


class JobRow(TypedDict):
    """A line of the list (``/api/jobs``)."""

    conn_id: str
    namespace: str | None
    name: str | None
    uid: str | None
    state: status.Phase
    reason: str
    message: str
    created: str | None
    age_seconds: float | None
    duration_seconds: float | None
    replicas: dict[str, dict[str, int]]
    """Per replica type: ``total``, ``active``, ``succeeded``, ``failed``."""
    try_number: int | None
    task: TaskIdentity | None
    task_instance_path: str | None


class PodRow(TypedDict):
    """A replica's pod in the detail view."""

    replica: str
    pod: str
    phase: str
    exit_code: int | None
    reason: str | None
    restarts: int


class JobDetail(JobRow):
    """The detail view of one job (``/api/jobs/...``, and each job of ``/api/task``)."""

    conditions: list[JobCondition]
    pods: list[PodRow]
    log_replica: str
    log: list[str]
    failure: str | None


class TaskMarks(TypedDict):
    """What a row says of its task instance, and the orphan mark."""

    task_state: str | None
    task_ended: str | None
    orphan: str | None
    orphan_kept: bool
    can_delete: bool


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def task_instance_path(identity: TaskIdentity) -> str:
    """The Airflow 3 UI's path of a task instance."""
    path = "/dags/{}/runs/{}/tasks/{}".format(
        *(quote(str(identity[k]), safe="") for k in ("dag_id", "run_id", "task_id"))
    )
    return path + (f"/mapped/{identity['map_index']}" if identity["map_index"] >= 0 else "")


def job_row(
    obj: KubeObject, *, conn_id: str, now: datetime.datetime, pods: Iterable[KubeObject] = ()
) -> JobRow:
    """One line of the list: identity, state, timing and replica counts (from ``pods`` when
    the job's status has none: a TrainJob's)."""
    meta = obj.get("metadata") or {}
    state = status.job_state(obj)
    if not state.replica_statuses:
        state = replace(state, replica_statuses=_replica_statuses(obj, pods))
    identity = naming.task_identity(obj)
    created, started = _time(meta.get("creationTimestamp")), _time(state.start_time)
    ended = _time(state.completion_time)
    counts = status.replica_counts(obj)
    replicas = {
        rtype: {
            "total": total,
            **{k: int((state.replica_statuses.get(rtype) or {}).get(k) or 0) for k in _COUNTS},
        }
        for rtype, total in sorted(counts.items())
    }
    return {
        "conn_id": conn_id,
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "state": state.phase,
        "reason": state.reason,
        "message": state.message,
        "created": meta.get("creationTimestamp"),
        "age_seconds": (now - created).total_seconds() if created else None,
        "duration_seconds": ((ended or now) - started).total_seconds() if started else None,
        "replicas": replicas,
        "try_number": _try_number(meta),
        "task": identity,
        "task_instance_path": task_instance_path(identity) if identity else None,
    }


def _try_number(meta: ObjectMeta) -> int | None:
    """The try that created the job (its ``try-number`` label), ``None`` when it has none."""
    value = (meta.get("labels") or {}).get(f"{naming.LABEL_PREFIX}/try-number", "")
    return int(value) if str(value).isdigit() else None


_COUNTS = ("active", "succeeded", "failed")


def _replica_statuses(obj: KubeObject, pods: Iterable[KubeObject]) -> dict[str, dict[str, int]]:
    ledger = status.ReplicaLedger.for_job(obj)
    for pod in pods:
        ledger.observe(pod)
    return ledger.replica_statuses()


def pod_row(pod: KubeObject) -> PodRow:
    """A replica's pod: phase, exit code, restarts, and why it waits."""
    outcome = status.replica_outcome(pod)
    return {
        "replica": outcome.replica,
        "pod": outcome.pod,
        "phase": (pod.get("status") or {}).get("phase", "Pending"),
        "exit_code": outcome.exit_code,
        "reason": outcome.reason or outcome.waiting_reason,
        "restarts": outcome.restarts,
    }


def job_detail(
    obj: KubeObject,
    pods: Iterable[KubeObject],
    log: list[str],
    *,
    conn_id: str,
    now: datetime.datetime,
    replica: str | None = None,
    failure: str | None = None,
) -> JobDetail:
    """The detail view: the row, the conditions in time order, every pod, the log tail of
    ``replica`` (default: ``log_replica``) and the failure report (``failure_report``)."""
    conditions = sorted(
        status.job_state(obj).conditions,
        key=lambda c: c.get("lastTransitionTime") or "",
    )  # stable: within one second, the order the operator wrote them in
    pods = list(pods)
    return {
        **job_row(obj, conn_id=conn_id, now=now, pods=pods),
        "conditions": conditions,
        "pods": sorted((pod_row(p) for p in pods), key=lambda p: _replica_order(p["replica"])),
        "log_replica": replica or log_replica(obj),
        "log": log,
        "failure": failure,
    }


def failure_report(
    obj: KubeObject,
    pods: Iterable[KubeObject],
    tail: Callable[[status.ReplicaOutcome], list[str]],
) -> str | None:
    """What the task said when the job failed (``report.failure_message``: failing replicas and
    exit codes, the earliest failure's termination message or ``tail`` of its pod, the
    condition), from the pods still there; ``None`` unless the job failed."""
    state = status.job_state(obj)
    if state.phase != "Failed":
        return None
    ledger = status.ReplicaLedger.for_job(obj)
    for pod in sorted(pods, key=_finished_at):  # the ledger keeps failures in time order
        ledger.observe(pod)
    meta = obj.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    return report.failure_message(where, state, ledger.failures, tail)


def _finished_at(pod: KubeObject) -> tuple[bool, str]:
    finished = status.replica_outcome(pod).finished_at
    return finished is None, str(finished or "")


def log_replica(obj: KubeObject) -> str:
    """The replica whose log the detail view shows: the chief, else worker 0."""
    return status.output_replica(status.replica_counts(obj))


def _replica_order(replica: str) -> tuple[int, str, int]:
    kind = replica.rpartition("-")[0]
    rank = {"chief": 0, "master": 0, "worker": 1, "ps": 2, "evaluator": 3}.get(kind, 4)
    return rank, kind, status.replica_index(replica)


def task_marks(
    obj: KubeObject,
    task: tuple[str | None, datetime.datetime | None] | None,
    *,
    now: datetime.datetime,
    can_delete: bool,
) -> TaskMarks:
    """What a job's row adds: its task instance's state (``task`` is ``(state, end_date)``,
    ``None`` when the task instance no longer exists) and, for a job that outlives it, the
    orphan mark; ``can_delete``: the user may edit the DAG (the page offers the delete action
    then)."""
    state, ended = task if task is not None else (orphans.GONE, None)
    verdict = orphans.check(obj, state)
    mark = None
    if verdict is not None:
        job = f"job still {verdict.job_phase.lower()}"
        if state == orphans.GONE:
            mark = f"task instance no longer exists; {job}"
        elif ended is not None:
            mark = f"task {state} {_ago((now - ended).total_seconds())} ago; {job}"
        else:
            mark = f"task {state}; {job}"
    return {
        "task_state": state,
        "task_ended": ended.isoformat() if ended else None,
        "orphan": mark,
        "orphan_kept": bool(verdict and verdict.keep),
        "can_delete": bool(verdict and can_delete),
    }


def _ago(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"
