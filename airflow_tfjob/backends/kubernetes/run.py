"""The Kubernetes backend's ``Run``: submit (or reattach) once, follow, collect, clean up."""

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


class KubernetesRun:
    """A job run by the training operator (``backends.Run``), submitted once: ``submit()``
    creates or adopts it (the deferred path submits, then defers), ``run()`` follows it."""

    def __init__(
        self, hook: TFJobHook, request: RunRequest, *, on_kill_action: str = "delete_tfjob"
    ) -> None:
        self.hook, self.request, self.on_kill_action = hook, request, on_kill_action
        self.submitted: dict[str, Any] | None = None
        self.job: JobRef | None = None

    def submit(self) -> dict[str, Any]:
        """Create the job or adopt this task instance's own (once; again: the same object)."""
        if self.submitted is None:
            self.submitted, _ = submit.submit(self.hook, self.request)
            self.job = JobRef.of(self.submitted)
            self.request.on_submitted(self.submitted)
        return self.submitted

    def run(self) -> dict[str, Any]:
        """Follow the job to the end; the XCom result, or ``TFJobFailed``/``TFJobTimeout``."""
        return follow_to_end(self.hook, self.request, self.submit())

    def kill(self, why: str) -> None:
        """Delete the job (unless ``on_kill_action`` keeps it)."""
        if self.job is not None and self.on_kill_action == "delete_tfjob":
            delete(self.hook, self.request.log, self.job, why)


def follow_to_end(
    hook: TFJobHook, request: RunRequest, submitted: dict[str, Any]
) -> dict[str, Any]:
    """Follow a submitted job, collect its logs and outcome, apply ``on_finish_action``."""
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


def delete(hook: TFJobHook, log: Any, job: JobRef, why: str) -> None:
    """Delete the job (this very one: its uid is the precondition) and say why."""
    hook.delete(job.name, job.namespace, uid=job.uid)
    log.info("Deleted TFJob %s: %s", job.where, why)
