"""The Kubernetes backend's ``Run``: submit (or reattach) once, follow, collect, clean up.

Only this backend defers. A deferred task submits through its ``KubernetesRun`` (``submit``),
then ends in the triggerer or resumes in a new worker process, where no ``Run`` exists and
building one would render the manifest again for nothing: the resumed task ends through
``complete`` and a kill after resuming through ``delete``, the same functions ``run`` and
``kill`` use. So the operator calls these two module functions directly on that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import logstreams, submit, watches
from airflow_tfjob.backends.kubernetes.follower import JobFollower, settings_key
from airflow_tfjob.backends.kubernetes.objects import PODS
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import orphans, outcome
from airflow_tfjob.rules.follow import Limits
from airflow_tfjob.rules.jobref import JobRef
from airflow_tfjob.rules.outcome import TFJobEvent
from airflow_tfjob.rules.report import TaskResult


class KubernetesRun:
    """A job run on Kubernetes (``backends.Run``), as a TFJob or a TrainJob (the hook's
    ``job_api``), submitted once: ``submit()`` creates or adopts it (the deferred path submits,
    then defers), ``run()`` follows it with the same ``JobFollower`` the trigger runs, here in an
    event loop of the worker's own."""

    def __init__(
        self, hook: TFJobHook, request: RunRequest, *, on_kill_action: str = "delete_tfjob"
    ) -> None:
        self.hook, self.request, self.on_kill_action = hook, request, on_kill_action
        self.submitted: KubeObject | None = None
        self.job: JobRef | None = None

    def submit(self) -> KubeObject:
        """Create the job or adopt this task instance's own (once; again: the same object)."""
        if self.submitted is None:
            self.request.on_submitted(self._create())
        return self.submitted  # type: ignore[return-value]  # _create set it

    def _create(self) -> KubeObject:
        """``submit`` without telling the operator (``on_submitted``)."""
        self.submitted, _ = submit.submit(self.hook, self.request)
        self.job = JobRef.of(self.submitted)
        return self.submitted

    def run(self) -> TaskResult:
        """Follow the job to the end; the XCom result, or ``TFJobFailed``/``TFJobTimeout``."""
        event = run_until_alarm(self._submit_and_follow())
        ending = outcome.Ending(on_finish_action=self.request.on_finish_action)
        result: TaskResult = complete(self.hook, self.request.log, ending, event)
        return result

    async def _submit_and_follow(self) -> TFJobEvent:
        """Submit, then follow, with the job's watch and its pods' open from before the job
        exists: a replica that prints and exits at once, its pod deleted the moment the job
        ends (``cleanPodPolicy: All``), is seen as it starts, and its log opened then."""
        request, settings = self.request, self.hook.trigger_settings()
        hook, key = AsyncTFJobHook(None, **settings), settings_key(settings)
        meta = request.manifest["metadata"]
        async with contextlib.AsyncExitStack() as stack:
            # one client for every request, watch and log stream of this loop, built now: a
            # replica's log then opens in the time of a request
            await stack.enter_async_context(hook.client_session(key, logstreams.max_live()))
            subscriptions = [
                await stack.enter_async_context(
                    watches.subscribe(key, hook, meta["namespace"], kind, meta["name"], alone=True)
                )
                for kind in ("tfjobs", PODS)
            ]  # the follower subscribes to these very watches (one per job and kind)
            await _listed(subscriptions, WATCH_PATIENCE)
            # in threads: the loop keeps reading the watches, and opens logs, meanwhile
            fresh = self.submitted is None
            submitted = await asyncio.to_thread(self._create) if fresh else self.submitted
            assert submitted is not None
            follower = JobFollower(
                hook,
                JobRef.of(submitted),
                limits(submitted, deadline=request.deadline, startup=request.startup_timeout),
                key=key,
                log=request.log,
                get_logs=request.get_logs,
                poll_interval=request.poll_interval,
                shared=False,  # one job here: watch it alone, not its namespace
            )
            following = asyncio.ensure_future(follower.run())
            if fresh:  # the operator records the job (XCom, task state) while it is followed
                try:
                    await asyncio.to_thread(request.on_submitted, submitted)
                except BaseException:
                    following.cancel()
                    await asyncio.wait([following])
                    raise
            return await following

    def kill(self, why: str) -> None:
        """Delete the job (unless ``on_kill_action`` keeps it)."""
        if self.job is not None and self.on_kill_action == "delete_tfjob":
            delete(self.hook, self.request.log, self.job, why)


T = TypeVar("T")


def run_until_alarm(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, with Airflow's ``execution_timeout`` (a ``SIGALRM`` whose handler
    raises ``AirflowTaskTimeout``) raised here, after the loop has ended, never inside one of
    its tasks. Left to Python, the handler raises in whatever code runs when the signal comes:
    in a log stream's or a watch's task, that task ended with the timeout and nobody saw it; the
    task ran on past its deadline (fault campaign, seed 20261206 run 78). Here the signal only
    cancels ``coro``; the handler then runs where ``run`` was called."""
    handler = signal.getsignal(signal.SIGALRM)
    if threading.current_thread() is not threading.main_thread() or not callable(handler):
        return asyncio.run(coro)
    fired: list[bool] = []

    async def main() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None

        def alarm() -> None:
            fired.append(True)
            task.cancel()

        loop.add_signal_handler(signal.SIGALRM, alarm)
        try:
            return await coro
        finally:  # asyncio's removal leaves SIG_DFL (which would end the process): put it back
            loop.remove_signal_handler(signal.SIGALRM)
            signal.signal(signal.SIGALRM, handler)

    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        if not fired:
            raise
    else:
        if not fired:
            return result
    # here, outside the except: the task log's traceback shows the timeout alone
    handler(signal.SIGALRM, None)  # raises the timeout
    raise asyncio.CancelledError("the wait was cut by SIGALRM")  # a handler that did not raise


WATCH_PATIENCE = 5.0
"""How long a worker waits for its job's watches to list before it creates the job anyway (they
keep trying; the follower reads for itself while they do)."""


async def _listed(subscriptions: list[watches.Subscription], patience: float) -> None:
    """Wait until the watches have listed (or stopped trying for now), ``patience`` at most."""
    ends = time.monotonic() + patience
    while any(s.listing for s in subscriptions) and time.monotonic() < ends:
        await asyncio.sleep(0.01)


def limits(job: KubeObject, *, deadline: float | None, startup: float | None) -> Limits:
    """What ends a wait for the task's own ``job`` early."""
    policy = (job.get("spec") or {}).get("runPolicy") or {}
    return Limits(
        deadline=deadline,
        active_deadline_seconds=policy.get("activeDeadlineSeconds"),
        startup_timeout=startup,
    )


def complete(hook: TFJobHook, log: Any, ending: outcome.Ending, event: TFJobEvent) -> Any:
    """End a wait on the worker (synchronous, or resumed after a deferral): apply
    ``on_finish_action`` to a finished job, then return the value or raise."""
    ended = outcome.verdict(event, ending)
    if ended.kind == "finished":
        result = cast(TaskResult, event["result"])  # a finished verdict has one
        finish(hook, log, ending.on_finish_action, JobRef.of(event), result["state"])
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
