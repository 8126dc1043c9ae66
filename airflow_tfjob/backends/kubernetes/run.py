"""The Kubernetes backend's one entry point: submit (or reattach), follow, collect, clean up."""

from __future__ import annotations

from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import submit
from airflow_tfjob.backends.kubernetes.pods import PodTracker
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.backends.kubernetes.wait import Waiter
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec import outcome
from airflow_tfjob.spec.follow import LOG_DRAIN_SECONDS, Follow, Limits
from airflow_tfjob.spec.jobref import JobRef


def run(
    hook: TFJobHook, request: RunRequest, *, submitted: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the job to the end; return the XCom result or raise ``TFJobFailed``/``TFJobTimeout``.
    ``submitted``: the job, when the caller has already submitted (or adopted) it."""
    if submitted is None:
        submitted, _ = submit.submit(hook, request)
        request.on_submitted(submitted)
    meta = submitted["metadata"]
    policy = (submitted.get("spec") or {}).get("runPolicy") or {}
    limits = Limits(
        deadline=request.deadline,
        active_deadline_seconds=policy.get("activeDeadlineSeconds"),
        startup_timeout=request.startup_timeout,
    )
    follow = Follow(submitted, limits)
    tracker = PodTracker(hook, follow, log=request.log, get_logs=request.get_logs)
    tracker.start()
    try:
        Waiter(hook, request, follow, meta.get("resourceVersion")).run()
    except BaseException:
        tracker.stop()
        raise
    tracker.finish(LOG_DRAIN_SECONDS if request.get_logs else 0.0)
    result = follow.result()
    finish(hook, request.log, request.on_finish_action, JobRef.of(submitted), follow.state.phase)
    failure = follow.failure(tracker.tail)
    if failure is not None:
        raise errors.TFJobFailed(failure)
    return result


def finish(hook: TFJobHook, log: Any, action: str, job: JobRef, phase: str) -> None:
    """Apply ``on_finish_action`` once logs and output are safe."""
    if not outcome.deletes(action, phase):
        log.info("Keeping TFJob %s (%s)", job.where, action)
        return
    hook.delete(job.name, job.namespace, uid=job.uid)
    log.info("Deleted TFJob %s (%s)", job.where, action)
