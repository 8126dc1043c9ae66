"""The Kubernetes backend's ``Run``: submit (or reattach) once, follow, collect, clean up."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import submit
from airflow_tfjob.backends.kubernetes.follower import JobFollower, settings_key
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.spec import orphans, outcome
from airflow_tfjob.spec.follow import Limits
from airflow_tfjob.spec.jobref import JobRef


class KubernetesRun:
    """A job run by the training operator (``backends.Run``), submitted once: ``submit()``
    creates or adopts it (the deferred path submits, then defers), ``run()`` follows it with the
    same ``JobFollower`` the trigger runs, here in an event loop of the worker's own."""

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
        submitted, request = self.submit(), self.request
        settings = self.hook.trigger_settings()
        follower = JobFollower(
            AsyncTFJobHook(None, **settings),
            JobRef.of(submitted),
            limits(submitted, deadline=request.deadline, startup=request.startup_timeout),
            key=settings_key(settings),
            log=request.log,
            get_logs=request.get_logs,
            poll_interval=request.poll_interval,
            shared=False,  # one job here: watch it alone, not its namespace
        )
        event = asyncio.run(follower.run())
        ending = outcome.Ending(on_finish_action=request.on_finish_action)
        result: dict[str, Any] = complete(self.hook, request.log, ending, event)
        return result

    def kill(self, why: str) -> None:
        """Delete the job (unless ``on_kill_action`` keeps it)."""
        if self.job is not None and self.on_kill_action == "delete_tfjob":
            delete(self.hook, self.request.log, self.job, why)


def limits(job: Mapping[str, Any], *, deadline: float | None, startup: float | None) -> Limits:
    """What ends a wait for the task's own ``job`` early."""
    policy = (job.get("spec") or {}).get("runPolicy") or {}
    return Limits(
        deadline=deadline,
        active_deadline_seconds=policy.get("activeDeadlineSeconds"),
        startup_timeout=startup,
    )


def complete(hook: TFJobHook, log: Any, ending: outcome.Ending, event: Mapping[str, Any]) -> Any:
    """End a wait on the worker (synchronous, or resumed after a deferral): apply
    ``on_finish_action`` to a finished job, then return the value or raise."""
    ended = outcome.verdict(event, ending)
    if ended.kind == "finished":
        finish(hook, log, ending.on_finish_action, JobRef.of(event), event["result"]["state"])
    if not ended.ok:
        raise errors.for_verdict(ended)
    return ended.value


def finish(hook: TFJobHook, log: Any, action: str | None, job: JobRef, phase: str) -> None:
    """Apply ``on_finish_action`` once logs and output are safe."""
    if not outcome.deletes(action, phase):
        log.info("Keeping TFJob %s (%s)", job.where, action)
        try:  # a later run of this task instance (a clear) must not take it as its own
            hook.patch(job.name, job.namespace, orphans.collected_patch(job.uid))
        except errors.TFJobError as exc:
            log.warning("TFJob %s: could not mark it collected (%s)", job.where, exc)
        return
    hook.delete(job.name, job.namespace, uid=job.uid)
    log.info("Deleted TFJob %s (%s)", job.where, action)


def delete(hook: TFJobHook, log: Any, job: JobRef, why: str) -> None:
    """Delete the job (this very one: its uid is the precondition) and say why."""
    hook.delete(job.name, job.namespace, uid=job.uid)
    log.info("Deleted TFJob %s: %s", job.where, why)
