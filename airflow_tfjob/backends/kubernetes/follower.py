"""``JobFollower``: follow one job to its end — the one engine of every Kubernetes wait.

The worker runs it in ``asyncio.run`` (``KubernetesRun.run``), the triggerer inside
``TFJobTrigger``; the rules it applies are ``rules.follow``'s. It reads the job's status and its
pods (a TrainJob's read as a TFJob's by the hook) from the shared watches of its event loop
(``watches``), so the output and failures are captured as containers end, and reads the API
itself only when those cannot serve it: before the watch has seen the job, while the watch
reconnects, and when a finished job's pods never showed up.
Each pod's log is streamed into ``log`` (a container restarted in place is followed again,
no line lost or repeated; a pod re-created under the same name is another pod: by uid) and
drained before the outcome is told. It deletes the job only when a limit that says so passes; it
returns one ``TFJobEvent`` and never raises a ``TFJobError``.

One failure policy for every request it makes (the first read, re-reads, the pods' list, the
deletion at a limit, every log stream): an unavailable API server (5xx, 429, a connection refused
or dropped: ``TFJobUnavailable``, after the hook's own retries) is tried again with the shared
backoff (``backoff``) — never a failure before the task's own limits. Reads wait until the
task's deadline (a triggerer restart that draws 429s from thousands of followers costs time, not
tasks); a deletion at a limit is tried for ``DELETE_PATIENCE`` and the message says whether the job
was deleted. Any other error (403, the CRD removed) ends the wait at once, and says the job was
left as it was: a retry of the task adopts it, else the reaper deletes it (docs/orphans.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import watches
from airflow_tfjob.backends.kubernetes.backoff import Backoff
from airflow_tfjob.backends.kubernetes.inbox import Events
from airflow_tfjob.backends.kubernetes.messages import AGAIN
from airflow_tfjob.backends.kubernetes.objects import PODS, pods_kind
from airflow_tfjob.backends.kubernetes.replicalogs import ReplicaLogs
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, ConnectionSettings
from airflow_tfjob.model.kube import KubeObject, WatchEvent
from airflow_tfjob.rules import report
from airflow_tfjob.rules.follow import DELETED, LOG_DRAIN_SECONDS, Follow, Limits, Lost
from airflow_tfjob.rules.jobref import JobRef
from airflow_tfjob.rules.outcome import TFJobEvent

EventKind = Literal["finished", "deadline", "error"]
FIRST_LIST_PATIENCE = 60.0
"""How long a follower waits on a shared watch's first list (in flight, not failing) before it
reads its job itself."""
SETTLE_SECONDS = 2.0
"""How long a finished job's pod events may trail its status before the pods are listed."""
DELETE_PATIENCE = 4.0
"""How long a deletion at a limit is tried while the API server is unavailable: within the 5 s
between the task's deadline and its ``execution_timeout``."""
UNREAD = "state unknown: the API server was unavailable"
LEFT = (
    "the job was not deleted: a retry of this task adopts it; once the task has failed for good, "
    "the reaper deletes it (docs/orphans.md)"
)
T = TypeVar("T")


class Unavailable(Exception):
    """The API server stayed unavailable until the limit of what was being tried."""


class JobFollower:
    """One wait for one job (``job``'s uid: a namesake created later is not ours).

    :param key: Identifies the cluster and credentials: followers with equal keys share watches.
    :param log: Where progress and replica log lines go.
    :param poll_interval: How long to wait for the shared watch (to first see the job, or to
        recover from a reconnect) before reading the job directly.
    :param shared: Follow through the namespace's watches, shared by every follower on the
        event loop (a triggerer's thousands); else through watches of this job alone (a worker
        that follows one job lists only that job and its pods, not the namespace).
    """

    def __init__(
        self,
        hook: AsyncTFJobHook,
        job: JobRef,
        limits: Limits,
        *,
        key: str,
        log: Any,
        get_logs: bool,
        poll_interval: float,
        shared: bool = True,
    ) -> None:
        self.hook, self.job, self.limits, self.key, self.log = hook, job, limits, key, log
        self.get_logs, self.poll_interval, self.shared = get_logs, poll_interval, shared
        self.logs = ReplicaLogs(hook, job, log)

    async def run(self) -> TFJobEvent:
        """Follow the job to its end, or until a limit passes or it is lost."""
        try:
            return await self._follow()
        except Lost as exc:  # deleted or replaced: the message says so
            return self._event("error", str(exc))
        except Unavailable as exc:  # the deadline passed before the job could be read
            return await self._unread(exc)
        except errors.TFJobError as exc:
            where, fate = self.job.where, f"; {LEFT}" if self.limits.owned else ""
            return self._event("error", f"stopped following TFJob {where}: {exc}{fate}")
        finally:
            await self.close()

    def log_positions(self) -> dict[str, list[Any]]:
        """Pod uid -> where its log has been read to (``LogCursor.position``)."""
        return self.logs.positions()

    def resume_logs(self, positions: Mapping[str, object]) -> None:
        """Go on from ``log_positions`` saved by an earlier follower of the same job (a trigger
        handed over, a triggerer restarted): no line it printed is printed again."""
        self.logs.resume(positions)

    async def close(self) -> None:
        """Stop following logs (the job keeps running)."""
        await self.logs.close()

    async def _follow(self) -> TFJobEvent:
        job, hook = self.job, self.hook
        inbox = Events()  # the job's events and its pods', in the order they come
        alone = not self.shared
        async with contextlib.AsyncExitStack() as stack:
            jobs = await stack.enter_async_context(
                watches.subscribe(
                    self.key, hook, job.namespace, "tfjobs", job.name, queue=inbox, alone=alone
                )
            )
            if alone:  # the pod watch is known now: a replica that runs for a moment is seen
                await stack.enter_async_context(self._pods(PODS, inbox))
            follow, pods = await self._start(jobs, inbox)
            if not alone:  # which pod watch sees the pods depends on the job (pods_kind)
                await stack.enter_async_context(self._pods(pods, inbox))
            return await self._wait(follow, jobs, inbox)

    def _pods(self, kind: str, inbox: Events) -> Any:
        """The subscription to the pod watch ``kind`` that sees this job's pods."""
        job = self.job
        return watches.subscribe(
            self.key, self.hook, job.namespace, kind, job.name, queue=inbox, alone=not self.shared
        )

    async def _wait(self, follow: Follow, jobs: watches.Subscription, inbox: Events) -> TFJobEvent:
        while not follow.done:
            left = follow.seconds_left(time.time())
            if left <= 0 and (expiry := follow.expired(time.time())) is not None:
                if expiry.delete and (ended := await self._delete()):
                    expiry = follow.expired(time.time(), ended=ended) or expiry
                kind: EventKind = "error" if expiry.kind == "startup" else "deadline"
                return self._event(kind, expiry.message)
            # A healthy watch tells every change, and says when it stops being healthy (STALE):
            # sleep until the nearest limit. Otherwise read the job every poll_interval of quiet.
            wait = left if jobs.healthy else min(left, self.poll_interval)
            timeout = None if wait == float("inf") else max(0.05, wait)
            if not self._take(follow, await inbox.get(timeout)) and not jobs.healthy:
                await self._reread(follow)
        await self._settle(follow, inbox)
        if self.get_logs:
            await self.logs.drain(follow)
        return self._finished(follow)

    async def _start(self, jobs: watches.Subscription, inbox: Events) -> tuple[Follow, str]:
        """The job as the shared watch has it (no request when it is in sync), else read, and
        the pod watch that sees its pods (``objects.pods_kind``). What was read is not kept past
        this (only ``Follow``'s state of it)."""
        began = time.monotonic()
        obj: KubeObject | None = None
        early: list[WatchEvent] = []  # pod events before the job's (a worker's pod watch)
        while obj is None:
            waited = time.monotonic() - began
            left = self.poll_interval - waited
            if left <= 0 and jobs.listing and waited < FIRST_LIST_PATIENCE:
                left = 1.0  # the watch's first list is under way and has not failed: it will tell
            if left <= 0:  # its start-up limit needs its creation time: only the deadline
                obj = await self._get(self.limits.deadline)
                break
            event = await inbox.get(left)
            if event is None or event["type"] == "STALE":
                continue
            if event["kind"] != "tfjobs":
                early.append(event)
                continue
            if event["type"] in ("DELETED", "ABSENT"):  # a deletion ends the wait here
                raise Lost(f"TFJob {self.job.where} {DELETED}")
            obj = event["object"]
        follow = Follow(obj, self.limits, uid=self.job.uid)
        self.log.info("TFJob %s: %s", self.job.where, follow.state.summary())
        for event in early:
            self._take(follow, event)
        return follow, pods_kind(obj) if self.shared else PODS

    def _take(self, follow: Follow, event: WatchEvent | None) -> bool:
        """Apply one event; False when there was none (the wait timed out)."""
        if event is None:
            return False
        if event["kind"] != "tfjobs":
            self._pod_event(follow, event)
        elif event["type"] != "STALE":
            self._job_event(follow, event)
        return True

    async def _retrying(
        self, call: Callable[[], Awaitable[T]], what: str, until: float | None
    ) -> T:
        """``call()``, tried again with the shared backoff while the API server is unavailable,
        until ``until`` (epoch seconds; None: no end but the wait's): then ``Unavailable``."""
        backoff = Backoff()
        while True:
            try:
                return await call()
            except errors.TFJobUnavailable as exc:
                delay = backoff.next()
                if until is not None and time.time() + delay >= until:
                    raise Unavailable(str(exc)) from exc
                self.log.warning(AGAIN, self.job.where, what, exc, delay)
                await asyncio.sleep(delay)

    async def _get(self, until: float | None) -> KubeObject:
        job = self.job
        try:
            return await self._retrying(
                lambda: self.hook.get(job.name, job.namespace), "read it", until
            )
        except errors.TFJobNotFound:
            raise Lost(f"TFJob {job.where} {DELETED}") from None

    async def _reread(self, follow: Follow) -> None:
        """Read the job while the watch reconnects, for up to ``poll_interval`` (the limits are
        checked between tries, and the watch may come back meanwhile)."""
        until = time.time() + self.poll_interval
        try:
            obj = await self._get(min(until, self.limits.deadline or until))
        except Unavailable:
            return
        self._update(follow, obj)

    async def _delete(self) -> str | None:
        """Delete the job at a limit (this very one: its uid is the precondition); None when it
        was, else what became of it."""
        job = self.job
        delete = lambda: self.hook.delete(job.name, job.namespace, uid=job.uid)
        try:
            await self._retrying(delete, "delete it", time.time() + DELETE_PATIENCE)
        except Unavailable as exc:
            return (
                f"it could NOT be deleted (the API server stayed unavailable: {exc}) and may "
                "still run: the reaper deletes it once the task has failed for good "
                "(docs/orphans.md)"
            )
        except errors.TFJobNotFound:
            return None  # gone already: what the deletion was for
        except errors.TFJobError as exc:  # refused (403, ...): it keeps its labels for the reaper
            return (
                f"it could not be deleted ({exc}) and is still running; the reaper deletes it "
                "once its task has ended, or delete it by hand"
            )
        return None

    async def _unread(self, exc: Unavailable) -> TFJobEvent:
        """The task's deadline passed before the job could be read at all."""
        where = self.job.where
        if not self.limits.owned:
            message = f"TFJob {where} could not be read before the sensor's timeout ({exc})"
            return self._event("deadline", message)
        ended = await self._delete() or "it was deleted"
        return self._event(
            "deadline", report.deadline_message(where, f"{UNREAD}: {exc}", ended=ended)
        )

    async def _settle(self, follow: Follow, inbox: Events) -> None:
        """Bring the ledger up to the job's final state: from the pod watch, which may trail the
        job's by moments, else (no sign of the pods within SETTLE_SECONDS) from one list."""
        ends = time.monotonic() + SETTLE_SECONDS
        while True:  # what has come first, then (while unexplained) what comes in time
            explained = follow.explained()
            event = await inbox.get(0.0 if explained else ends - time.monotonic())
            if event is None:
                if explained:
                    return
                break
            if event["kind"] != "tfjobs":  # the job's own events no longer matter: it has ended
                self._pod_event(follow, event)
        self.log.info(
            "TFJob %s: its pods did not show on the pod watch within %.0f s; listing them",
            follow.where,
            SETTLE_SECONDS,
        )
        job, until = self.job, time.time() + LOG_DRAIN_SECONDS
        listing = lambda: self.hook.list_pods(job.name, job.namespace)
        with contextlib.suppress(errors.TFJobError, Unavailable):  # gone: cleanPodPolicy All
            for pod in (await self._retrying(listing, "list its pods", until))[0]:
                follow.pod(pod)

    def _job_event(self, follow: Follow, event: WatchEvent) -> None:
        if event["type"] in ("DELETED", "ABSENT"):
            follow.gone()
        self._update(follow, event["object"])

    def _update(self, follow: Follow, obj: KubeObject) -> None:
        if follow.job(obj):
            self.log.info("TFJob %s: %s", follow.where, follow.state.summary())
        if follow.state.is_terminal:
            self.logs.job_ended()

    def _pod_event(self, follow: Follow, event: WatchEvent) -> None:
        pod = event["object"]
        if event["type"] == "ABSENT" or not pod.get("status"):
            return
        outcome = follow.pod(pod, deleted=event["type"] == "DELETED")
        if self.get_logs:
            self.logs.pod(follow, outcome, pod, event["type"])

    def _finished(self, follow: Follow) -> TFJobEvent:
        event = self._event("finished", f"TFJob {follow.where} {follow.state.phase}")
        event["result"] = follow.result()
        event["failure"] = follow.failure(lambda failed: self.logs.tail(failed.pod_key))
        return event

    def _event(self, kind: EventKind, message: str) -> TFJobEvent:
        job = self.job
        return TFJobEvent(
            kind=kind,
            name=job.name,
            namespace=job.namespace,
            uid=job.uid,
            message=message,
            result=None,
            failure=None,
        )


def settings_key(settings: Mapping[str, Any]) -> str:
    """Followers with the same connection settings share watches."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


SETTINGS_KEPT = 64
"""How many distinct connection settings ``shared_settings`` keeps (a process has a few)."""
_SETTINGS: dict[str, dict[str, Any]] = {}


def shared_settings(settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The key of ``settings`` and one process-wide copy of them: a triggerer deserializes every
    trigger's kwargs apart, and 10,000 copies of one kubeconfig (certificates inline: kilobytes
    each) would be 10,000 times the memory of one."""
    key = settings_key(settings)
    kept = _SETTINGS.setdefault(key, ConnectionSettings(settings))  # its repr hides credentials
    while len(_SETTINGS) > SETTINGS_KEPT:  # the oldest go; their triggers keep their own copy
        del _SETTINGS[next(iter(_SETTINGS))]
    return key, kept
