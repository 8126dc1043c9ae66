"""One reconcile of a TFJob, as a pure function: what the training operator v1.9 would do.

Follows ``ReconcileJobs`` (common/job.go) and the TFJob ``ReconcilePods``/``UpdateJobStatus``
(tfjob_controller.go): finished jobs only get TTL and cleanPodPolicy handling; a suspended job
loses its pods; backoffLimit and activeDeadlineSeconds fail the job after deleting every pod; a
failed pod with a retryable policy is deleted (to be recreated) and sets ``Restarting``; otherwise
replica counts decide ``Running``/``Succeeded``/``Failed``. The caller performs the plan.
"""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass, field

from tests.sim import conditions, model
from tests.sim.model import Obj

UNKNOWN_EXIT = 0xBEEF
"""The operator's "no exit code seen" marker; as it is >= 128 it counts as retryable (!)."""


@dataclass
class Plan:
    """What to do after one reconcile."""

    status: Obj
    """The new TFJob status (written only if it differs from the old one)."""
    create: list[tuple[str, int]] = field(default_factory=list)
    """Replicas ``(type, index)`` whose pod is missing."""
    create_services: list[tuple[str, int]] = field(default_factory=list)
    """Replicas whose service is missing."""
    delete_pods: list[str] = field(default_factory=list)
    """Pods to delete."""
    delete_services: list[str] = field(default_factory=list)
    """Services to delete."""
    delete_job: bool = False
    """The TTL after finishing has passed."""
    requeue_after: float | None = None
    """Reconcile again after this many seconds (deadline or TTL)."""


def reconcile(job: Obj, pods: list[Obj], services: list[Obj], now: datetime.datetime) -> Plan:
    """Decide what the operator does with ``job`` given its live pods and services."""
    plan = Plan(status=copy.deepcopy(job.get("status") or {}))
    name = job["metadata"]["name"]
    run_policy = job["spec"].get("runPolicy") or {}
    status = plan.status
    conditions.update(
        status, "Created", "True", "TFJobCreated", f"TFJob {name} is created.", now=now
    )
    if conditions.is_finished(status):
        _finished(plan, run_policy, pods, now)
    elif run_policy.get("suspend"):
        _suspend(plan, name, pods, services, now)
    else:
        if conditions.is_true(status, "Suspended"):
            message = f"TFJob {name} is resumed."
            conditions.update(status, "Suspended", "False", "TFJobResumed", message, now=now)
            status["startTime"] = conditions.stamp(now)
        failure = _limit_failure(job, pods, status, now)
        if failure:
            _fail_on_limit(plan, run_policy, pods, failure, now)
        else:
            _reconcile_replicas(plan, job, pods, services, now)
    return plan


def _finished(plan: Plan, run_policy: Obj, pods: list[Obj], now: datetime.datetime) -> None:
    _cleanup_ttl(plan, run_policy, now)
    _delete_pods_for_policy(plan, run_policy.get("cleanPodPolicy") or "None", pods)
    if conditions.is_true(plan.status, "Succeeded"):
        for replica in (plan.status.get("replicaStatuses") or {}).values():
            replica["succeeded"] = replica.get("succeeded", 0) + replica.pop("active", 0)


def _cleanup_ttl(plan: Plan, run_policy: Obj, now: datetime.datetime) -> None:
    ttl = run_policy.get("ttlSecondsAfterFinished")
    completed = plan.status.get("completionTime")
    if ttl is None or completed is None:
        return
    remaining = (
        conditions.parse(completed) + datetime.timedelta(seconds=ttl) - now
    ).total_seconds()
    if remaining < 0:
        plan.delete_job = True
    else:
        plan.requeue_after = remaining + 0.05


def _delete_pods_for_policy(plan: Plan, policy: str, pods: list[Obj]) -> None:
    """``DeletePodsAndServices`` for a finished job: None keeps all, Running only live ones."""
    if policy == "None":
        return
    for pod in pods:
        phase = pod.get("status", {}).get("phase", "Pending")
        if policy == "Running" and phase not in ("Running", "Pending"):
            continue
        plan.delete_pods.append(pod["metadata"]["name"])
        plan.delete_services.append(pod["metadata"]["name"])


def _suspend(
    plan: Plan, name: str, pods: list[Obj], services: list[Obj], now: datetime.datetime
) -> None:
    status = plan.status
    plan.delete_pods += [pod["metadata"]["name"] for pod in pods]
    plan.delete_services += [svc["metadata"]["name"] for svc in services]
    for replica in (status.get("replicaStatuses") or {}).values():
        replica["active"] = 0
    message = f"TFJob {name} is suspended."
    if conditions.is_true(status, "Running"):
        conditions.update(status, "Running", "False", "TFJobSuspended", message, now=now)
    if not conditions.is_true(status, "Suspended"):
        conditions.update(status, "Suspended", "True", "TFJobSuspended", message, now=now)


def _limit_failure(job: Obj, pods: list[Obj], status: Obj, now: datetime.datetime) -> str:
    """The failure message if backoffLimit or activeDeadlineSeconds is exceeded, else ""."""
    name = job["metadata"]["name"]
    run_policy = job["spec"].get("runPolicy") or {}
    limit = run_policy.get("backoffLimit")
    if limit is not None:
        restarts = _restarts_of_running_pods(job, pods)
        if restarts > 0 if limit == 0 else restarts >= limit:
            return f"Job {name} has failed because it has reached the specified backoff limit"
    deadline = run_policy.get("activeDeadlineSeconds")
    started = status.get("startTime")
    elapsed = (now - conditions.parse(started)).total_seconds() if started else 0.0
    if deadline is not None and started is not None and elapsed >= deadline:
        return f"Job {name} has failed because it was active longer than specified deadline"
    return ""


def _restarts_of_running_pods(job: Obj, pods: list[Obj]) -> int:
    """``PastBackoffLimit``: container restarts of Running pods with OnFailure/Always policy."""
    total = 0
    for rtype, spec in model.replica_specs(job).items():
        if model.restart_policy(spec) not in ("OnFailure", "Always"):
            continue
        for pod in _of_type(pods, rtype):
            pod_status = pod.get("status") or {}
            if pod_status.get("phase") != "Running":
                continue
            statuses = (pod_status.get("initContainerStatuses") or []) + (
                pod_status.get("containerStatuses") or []
            )
            total += sum(int(s.get("restartCount", 0)) for s in statuses)
    return total


def _fail_on_limit(
    plan: Plan, run_policy: Obj, pods: list[Obj], message: str, now: datetime.datetime
) -> None:
    """Backoff limit or deadline: delete every pod (the job is not finished yet), then fail."""
    status = plan.status
    status.setdefault("completionTime", conditions.stamp(now))
    for pod in pods:
        plan.delete_pods.append(pod["metadata"]["name"])
        plan.delete_services.append(pod["metadata"]["name"])
    _cleanup_ttl(plan, run_policy, now)
    conditions.update(status, "Failed", "True", "TFJobFailed", message, now=now)


def _of_type(pods: list[Obj], replica_type: str) -> list[Obj]:
    rt = replica_type.lower()
    return [p for p in pods if p["metadata"].get("labels", {}).get(model.LABEL_TYPE) == rt]


def _index(pod: Obj) -> int:
    try:
        return int(pod["metadata"]["labels"][model.LABEL_INDEX])
    except (KeyError, ValueError):
        return -1


def exit_code(pod: Obj) -> int:
    """Exit code of the terminated ``tensorflow`` container, or the operator's marker."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated")
        if cs.get("name") == model.CONTAINER and terminated is not None:
            return int(terminated.get("exitCode", 0))
    return UNKNOWN_EXIT


def _retryable(spec: Obj, pod: Obj) -> bool:
    policy = model.restart_policy(spec)
    if policy == "ExitCode":
        return exit_code(pod) >= 128
    return policy in ("OnFailure", "Always")


def _reconcile_replicas(
    plan: Plan, job: Obj, pods: list[Obj], services: list[Obj], now: datetime.datetime
) -> None:
    """``ReconcilePods`` and ``ReconcileServices`` for every type, then ``UpdateJobStatus``."""
    name = job["metadata"]["name"]
    statuses = plan.status.setdefault("replicaStatuses", {})
    service_names = {svc["metadata"]["name"] for svc in services}
    for rtype, spec in model.replica_specs(job).items():
        statuses[rtype] = _reconcile_type(plan, name, rtype, spec, _of_type(pods, rtype), now=now)
        for index in range(model.replica_count(spec)):
            if model.pod_name(name, rtype, index) not in service_names:
                plan.create_services.append((rtype, index))
    _update_job_status(plan, job, pods, now)


def _reconcile_type(
    plan: Plan, name: str, rtype: str, spec: Obj, pods: list[Obj], *, now: datetime.datetime
) -> Obj:
    """Create missing pods, delete failed retryable ones; return the replica status."""
    counts: Obj = {"selector": model.selector(name, rtype)}
    wanted = model.replica_count(spec)
    by_index: dict[int, list[Obj]] = {}
    for pod in pods:
        by_index.setdefault(_index(pod), []).append(pod)
    plan.create += [(rtype, i) for i in range(wanted) if i not in by_index]
    for index, group in sorted(by_index.items()):
        if len(group) != 1:
            continue  # the operator only warns about duplicates
        pod = group[0]
        if not 0 <= index < wanted:
            plan.delete_pods.append(pod["metadata"]["name"])
        phase = (pod.get("status") or {}).get("phase", "Pending")
        if phase == "Failed" and _retryable(spec, pod):
            plan.delete_pods.append(pod["metadata"]["name"])
            message = f"TFJob {name} is restarting because {rtype} replica(s) failed."
            conditions.update(
                plan.status, "Restarting", "True", "TFJobRestarting", message, now=now
            )
        field_name = {"Running": "active", "Succeeded": "succeeded", "Failed": "failed"}.get(phase)
        if field_name is not None:
            counts[field_name] = counts.get(field_name, 0) + 1
    return counts


def _worker0_completed(job: Obj, pods: list[Obj]) -> bool:
    if "Worker" not in model.replica_specs(job):
        return True
    for pod in _of_type(pods, "Worker"):
        phase = (pod.get("status") or {}).get("phase")
        if _index(pod) == 0 and exit_code(pod) == 0 and phase == "Succeeded":
            return True
    return False


def _update_job_status(plan: Plan, job: Obj, pods: list[Obj], now: datetime.datetime) -> None:
    status = plan.status
    deadline = (job["spec"].get("runPolicy") or {}).get("activeDeadlineSeconds")
    if "startTime" not in status:
        status["startTime"] = conditions.stamp(now)
        if deadline is not None:
            plan.requeue_after = float(deadline) + 0.05
    worker0_done = _worker0_completed(job, pods)
    # recorded before the loop: a chief's Running update replaces Restarting, and a retried
    # worker must not then read as failed (the operator keeps it for this reason; CONTRACT.md)
    found = conditions.find(status, "Restarting")
    restarting = dict(found) if found is not None and found.get("status") == "True" else None
    for rtype, spec in model.replica_specs(job).items():
        _update_for_type(
            plan, job, rtype, spec, worker0_done=worker0_done, restarting=restarting, now=now
        )


def _update_for_type(
    plan: Plan,
    job: Obj,
    rtype: str,
    spec: Obj,
    *,
    worker0_done: bool,
    restarting: Obj | None,
    now: datetime.datetime,
) -> None:
    status = plan.status
    key = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
    counts = status["replicaStatuses"][rtype]
    expected = model.replica_count(spec) - counts.get("succeeded", 0)
    running = counts.get("active", 0)
    running_msg, done_msg = f"TFJob {key} is running.", f"TFJob {key} successfully completed."
    if model.has_chief(job):
        if rtype in model.CHIEF_TYPES:
            if running > 0:
                conditions.update(status, "Running", "True", "TFJobRunning", running_msg, now=now)
            if expected == 0:
                _succeed(status, done_msg, now)
    elif rtype == "Worker":
        all_workers = job["spec"].get("successPolicy") == "AllWorkers"
        if expected == 0 or (worker0_done and not all_workers):
            _succeed(status, done_msg, now)
        elif running > 0:
            conditions.update(status, "Running", "True", "TFJobRunning", running_msg, now=now)
    failed = counts.get("failed", 0)
    if failed > 0:
        if restarting is not None:
            reason, message = restarting.get("reason", ""), restarting.get("message", "")
            conditions.update(status, "Restarting", "True", reason, message, now=now)
        elif not (job["spec"].get("enableDynamicWorker") and rtype == "Worker"):
            message = f"TFJob {key} has failed because {failed} {rtype} replica(s) failed."
            status.setdefault("completionTime", conditions.stamp(now))
            conditions.update(status, "Failed", "True", "TFJobFailed", message, now=now)


def _succeed(status: Obj, message: str, now: datetime.datetime) -> None:
    status.setdefault("completionTime", conditions.stamp(now))
    conditions.update(status, "Succeeded", "True", "TFJobSucceeded", message, now=now)
