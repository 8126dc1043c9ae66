"""Create the TFJob, or find the one this task instance already made: never two.

The name is deterministic per task instance, so a retried or restarted worker meets its own job as
a 409. What then happens is decided by ``decide`` (pure): a job of ours still running, or finished
while no try followed it, is adopted; a failed one from an earlier try, or a finished one whose
outcome an earlier run already took (``orphans.COLLECTED``: the task was cleared to run again) is
replaced; a job of someone else's is an error, never deleted.
"""

from __future__ import annotations

import time
from typing import Literal

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import backstop, orphans, status

Decision = Literal["adopt", "replace", "wait_deleted", "foreign"]
MAX_ATTEMPTS = 5
DELETE_WAIT_SECONDS = 120.0
CREATED = "Created %s %s/%s (uid %s)"
"""The task log's line for a created job: its kind (``TFJob``, ``TrainJob``), namespace, name and
uid (docs/ quote it)."""


def decide(existing: KubeObject, identity: dict[str, str]) -> Decision:
    """What to do with a TFJob found under our name."""
    meta = existing.get("metadata") or {}
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in identity.items()):
        return "foreign"
    if meta.get("deletionTimestamp"):
        return "wait_deleted"
    state = status.job_state(existing)
    if state.phase == "Failed" or (state.is_terminal and orphans.collected(existing)):
        return "replace"  # a failed try's job, or one a run before this (cleared) took
    return "adopt"


def _wait_deleted(hook: TFJobHook, name: str, namespace: str, uid: str) -> None:
    """Until the job and its pods are gone. A TrainJob is deleted in the background
    (``Api.propagation``): its JobSet outlives it until the garbage collector removes it, before
    its pods, and a namesake created meanwhile would read that JobSet's state as its own."""
    deadline = time.monotonic() + DELETE_WAIT_SECONDS
    delay = 0.2
    while time.monotonic() < deadline:
        try:
            if hook.get(name, namespace)["metadata"].get("uid") != uid:
                return
        except errors.TFJobNotFound:
            if not hook.list_pods(name, namespace)[0]:
                return
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise errors.TFJobError(
        f"TFJob {namespace}/{name} from an earlier try is still being deleted after "
        f"{DELETE_WAIT_SECONDS:.0f} s (finalizers pending?); not creating another beside it"
    )


def check_permissions(hook: TFJobHook, namespace: str, *, logs: bool) -> None:
    """Refuse, before anything is created, a run this identity could not follow to the end."""
    missing = hook.missing_permissions(namespace, logs=logs)
    if missing:
        who = (
            f"the identity of connection {hook.kubernetes_conn_id!r}"
            if hook.kubernetes_conn_id
            else "this kubeconfig's identity"
        )
        raise errors.TFJobForbidden(
            f"forbidden: {who} may not {', '.join(missing)} in namespace {namespace!r}, "
            "which a TFJob run needs; nothing was submitted. Grant them with a Role like "
            "deploy/rbac.yaml in this repository",
            status=403,
            reason="Forbidden",
        )


def submit(hook: TFJobHook, request: RunRequest) -> tuple[KubeObject, bool]:
    """The TFJob object and whether it was adopted rather than created."""
    name = request.manifest["metadata"]["name"]
    namespace = request.manifest["metadata"]["namespace"]
    identity = request.identity
    check_permissions(hook, namespace, logs=request.get_logs)
    earlier = _stored_job(hook, request, name, namespace)
    if earlier is not None:
        return _own_time(hook, request, earlier), True
    for _ in range(MAX_ATTEMPTS):
        try:
            created = hook.create(request.manifest)
            kind = hook.job_api.kind
            request.log.info(CREATED, kind, namespace, name, created["metadata"]["uid"])
            return created, False
        except errors.TFJobConflict:
            try:
                existing = hook.get(name, namespace)
            except errors.TFJobNotFound:
                continue  # deleted between our create and get: create again
        if _resolve(hook, request, existing, decide(existing, identity)):
            return _own_time(hook, request, existing), True
    raise errors.TFJobError(
        f"could not create TFJob {namespace}/{name} after {MAX_ATTEMPTS} attempts"
    )


def _stored_job(
    hook: TFJobHook, request: RunRequest, name: str, namespace: str
) -> KubeObject | None:
    """The job an earlier try recorded in the task state store under another name, if still live."""
    stored = request.stored or {}
    if not stored.get("name") or (stored.get("name"), stored.get("namespace")) == (name, namespace):
        return None
    try:
        job = hook.get(str(stored["name"]), str(stored["namespace"]))
    except errors.TFJobNotFound:
        return None
    if job["metadata"].get("uid") != stored.get("uid") or decide(job, {}) == "replace":
        return None
    request.log.info(
        "Adopting TFJob %s/%s recorded by an earlier try", stored["namespace"], stored["name"]
    )
    return job


def _own_time(hook: TFJobHook, request: RunRequest, job: KubeObject) -> KubeObject:
    """An adopted running job whose deadline is the backstop of the try that created it: raise
    it so this try gets its own time (``rules.backstop``); the patched job is what is followed."""
    seconds = backstop.extended(job, request.manifest, time.time())
    if seconds is None:
        return job
    meta = job["metadata"]
    request.log.info(
        "TFJob %s/%s: raising runPolicy.activeDeadlineSeconds from %s to %d s, so this try has "
        "its own execution_timeout (the deadline backstop counts from the job's start)",
        meta["namespace"],
        meta["name"],
        (job["spec"].get("runPolicy") or {}).get("activeDeadlineSeconds"),
        seconds,
    )
    body: KubeObject = {"spec": {"runPolicy": {"activeDeadlineSeconds": seconds}}}
    try:
        return hook.patch(meta["name"], meta["namespace"], body)
    except errors.TFJobError as exc:  # e.g. no patch permission: follow it as it is
        request.log.warning(
            "TFJob %s/%s: could not raise its activeDeadlineSeconds (%s); it still ends at the "
            "deadline its first try set",
            meta["namespace"],
            meta["name"],
            exc,
        )
        return job


def _resolve(
    hook: TFJobHook, request: RunRequest, existing: KubeObject, decision: Decision
) -> bool:
    meta = existing["metadata"]
    where = f"{meta['namespace']}/{meta['name']}"
    if decision == "foreign":
        raise errors.TFJobError(
            f"a TFJob named {where} already exists and was not created by this task instance "
            f"(its labels: {meta.get('labels') or {}}); pass another name= or delete it"
        )
    if decision == "adopt":
        phase = status.job_state(existing).phase
        request.log.info(
            "Adopting TFJob %s (uid %s, %s) created by an earlier attempt",
            where,
            meta["uid"],
            phase,
        )
        return True
    if decision == "replace":
        request.log.info(
            "Replacing TFJob %s (uid %s, %s) from an earlier try",
            where,
            meta["uid"],
            "its outcome already taken" if orphans.collected(existing) else "failed",
        )
        hook.delete(meta["name"], meta["namespace"], uid=meta["uid"])
    _wait_deleted(hook, meta["name"], meta["namespace"], meta["uid"])
    return False
