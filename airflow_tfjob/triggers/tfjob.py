"""``TFJobTrigger``: wait for a TFJob in the triggerer, without holding a worker slot.

It follows the job's own status through the process-wide shared watch (``_shared_watch``), and
the job's pods through another, so the output and failures are captured as containers end. A
trigger reads the API itself only when those watches cannot serve it: before the watch has seen
its job, while the watch reconnects, and when a finished job's pods never showed up.
Everything it needs is in its kwargs (``serialize``), connection settings included (resolved on
the worker; Airflow encrypts trigger kwargs), and deadlines are absolute, so a triggerer restart
resumes exactly where it was. It deletes the job only on a deadline or in ``on_kill`` (a user
killed the task) — never in ``cleanup``, which also runs when a triggerer merely restarts.

With ``end_from_trigger`` (the default of the operator, ``@task.tfjob`` and the sensor) it ends
the task itself in the triggerer: ``TaskSuccessEvent`` with the XComs the worker would push, or
``TaskFailedEvent`` (``TaskSkippedEvent`` for a soft-failing sensor) after logging the failure
report into the task log. No second worker run, so the scheduler's stale "the worker exited
after defer()" event cannot fail a task whose job finished fast (apache/airflow#66374 and kin).
``on_finish_action`` is applied once Airflow has recorded the task's end: Airflow then removes the
trigger and calls ``on_kill``, which deletes the job if the action says so. A triggerer that stops
before that runs the trigger again from the job, which still exists: the outcome is never lost.
Where no task instance is attached (``dag.test()`` runs triggers inline), the worker resumes as
before and ``execute_complete`` applies the same rules (``spec.outcome``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal, TypedDict

from airflow.triggers.base import (
    BaseTrigger,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from airflow_tfjob import errors
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.spec import follow as follow_mod
from airflow_tfjob.spec import outcome, status
from airflow_tfjob.spec.backoff import LOG_BACKOFF_CAP, Backoff
from airflow_tfjob.spec.follow import LOG_DRAIN_SECONDS, Follow, Limits, Lost
from airflow_tfjob.spec.logcursor import LogCursor
from airflow_tfjob.triggers import _events, _shared_watch

EventKind = Literal["finished", "deadline", "error"]
FIRST_LIST_PATIENCE = 60.0
"""How long a trigger waits on a shared watch's first list (in flight, not failing) before it
reads its job itself."""
SETTLE_SECONDS = 2.0
"""How long a finished job's pod events may trail its status before the pods are listed."""
REMOVAL_WAIT_SECONDS = 300.0
"""After ending its task, how long a trigger waits for Airflow to remove it (and so to call
``on_kill``, which applies ``on_finish_action``) before it applies the action itself."""


class TFJobEvent(TypedDict):
    """The payload of the one event a ``TFJobTrigger`` fires: all ``execute_complete`` needs."""

    kind: EventKind
    name: str
    namespace: str
    uid: str
    message: str
    result: dict[str, Any] | None
    """The XCom result (state, conditions, replica statuses, times, output) when finished."""
    failure: str | None
    """Why the job failed, when it did."""


class TFJobTrigger(BaseTrigger):
    """Fire once when a TFJob succeeds, fails, outlives its deadline, or cannot be followed.

    :param name: The TFJob's name.
    :param namespace: Its namespace.
    :param uid: Its uid: a namesake created later is not ours.
    :param settings: Connection settings from ``TFJobHook.trigger_settings()``.
    :param deadline: Absolute epoch seconds after which the job is deleted (execution_timeout).
    :param active_deadline_seconds: The job's own limit, enforced client-side from its startTime.
    :param get_logs: Stream replica log lines into the triggerer log.
    :param poll_interval: How long the trigger waits for the shared watch (to first see the job,
        or to recover from a reconnect) before it reads the job itself.
    :param on_kill_action: ``delete_tfjob`` or ``keep_tfjob`` when a user kills the task.
    :param delete_at_deadline: Delete the job at the deadline (False for sensors: not our job).
    :param target_states: Also fire when the job reaches one of these phases (e.g. ``Running``);
        it always fires at Succeeded or Failed.
    :param startup_timeout_seconds: Seconds from the job's creation for a replica to run, else
        the job is deleted and the trigger fires saying what each pod waits for.
    :param ending: ``spec.outcome.Ending.to_dict()``: what the task makes of the event.
    :param end_from_trigger: End the task here, in the triggerer, instead of resuming the worker
        (only where Airflow attached a task instance; ``dag.test()`` resumes the worker).
    """

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        uid: str,
        settings: dict[str, Any],
        deadline: float | None = None,
        active_deadline_seconds: float | None = None,
        get_logs: bool = False,
        poll_interval: float = 10.0,
        on_kill_action: str = "delete_tfjob",
        target_states: list[str] | None = None,
        delete_at_deadline: bool = True,
        startup_timeout_seconds: float | None = None,
        ending: dict[str, Any] | None = None,
        end_from_trigger: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.name, self.namespace, self.uid, self.settings = name, namespace, uid, settings
        self.deadline, self.active_deadline_seconds = deadline, active_deadline_seconds
        self.get_logs = get_logs
        self.poll_interval, self.on_kill_action = poll_interval, on_kill_action
        self.target_states = list(target_states or [])
        self.delete_at_deadline = delete_at_deadline
        self.startup_timeout_seconds = startup_timeout_seconds
        self.ending = outcome.Ending.from_dict(ending)
        self.end_from_trigger = end_from_trigger
        self._hook: AsyncTFJobHook | None = None
        """The hook of ``run``, its client ready, for ``on_kill``."""
        self._ended: outcome.Verdict | None = None
        """How this trigger ended its task, once it did (``on_kill`` then finishes the job)."""
        self._followers: dict[str, asyncio.Task[None]] = {}
        """Pod name -> the task following its log."""
        self._cursors: dict[str, LogCursor] = {}
        """The last log lines of each replica followed, for the failure message."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path (derived, never hand-written) and every constructor argument."""
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "settings": self.settings,
            "deadline": self.deadline,
            "active_deadline_seconds": self.active_deadline_seconds,
            "get_logs": self.get_logs,
            "poll_interval": self.poll_interval,
            "on_kill_action": self.on_kill_action,
            "target_states": self.target_states,
            "delete_at_deadline": self.delete_at_deadline,
            "startup_timeout_seconds": self.startup_timeout_seconds,
            "ending": self.ending.to_dict(),
            "end_from_trigger": self.end_from_trigger,
        }

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    def hook(self) -> AsyncTFJobHook:
        """An async hook from the serialized settings (no Airflow connection lookup)."""
        return AsyncTFJobHook(None, **self.settings)

    def _key(self) -> str:
        return hashlib.sha256(
            json.dumps(self.settings, sort_keys=True, default=str).encode()
        ).hexdigest()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook = self.hook()
        try:
            event = await self._follow(hook)
        except (errors.TFJobError, Lost) as exc:
            event = self._event("error", f"lost track of TFJob {self.where}: {exc}")
        if not (self.end_from_trigger and self.task_instance is not None):
            yield TriggerEvent(dict(event))  # type: ignore[no-untyped-call]
            return
        ended = outcome.verdict(event, self.ending)
        if ended.ok:
            self.log.info("%s; the task ends here, in the triggerer", ended.message)
        else:
            self.log.error("%s", ended.message)
        self._ended = ended
        yield _task_end_event(ended, self.ending)
        # Airflow records the task's end, then removes this trigger and calls on_kill, which
        # applies on_finish_action. Until then the job stays: a triggerer that stops before the
        # end is recorded finds it again and fires again.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), REMOVAL_WAIT_SECONDS)
        await self._finish(hook, ended)

    async def _finish(self, hook: AsyncTFJobHook, ended: outcome.Verdict) -> None:
        """Apply ``on_finish_action`` to the job once the task's end is recorded (at most once)."""
        if ended.kind != "finished" or self.ending.on_finish_action is None:
            return
        self._ended = None
        if not ended.delete:
            self.log.info("Keeping TFJob %s (%s)", self.where, self.ending.on_finish_action)
            return
        await hook.delete(self.name, self.namespace, uid=self.uid)
        self.log.info("Deleted TFJob %s (%s)", self.where, self.ending.on_finish_action)

    def _limits(self) -> Limits:
        return Limits(
            deadline=self.deadline,
            active_deadline_seconds=self.active_deadline_seconds,
            startup_timeout=self.startup_timeout_seconds,
            owned=self.delete_at_deadline,
            target_states=tuple(self.target_states),
            awaited=tuple(self.ending.success_states),
        )

    async def _follow(self, hook: AsyncTFJobHook) -> TFJobEvent:
        key = self._key()
        async with (
            _shared_watch.subscribe(key, hook, self.namespace, "tfjobs", self.name) as jobs,
            _shared_watch.subscribe(key, hook, self.namespace, "pods", self.name) as pods,
        ):
            obj, early = await self._first(hook, jobs, pods)
            follow = Follow(obj, self._limits(), uid=self.uid)
            for pod_event in early:
                self._pod_event(hook, follow, pod_event)
            while not follow.done:
                left = follow.seconds_left(time.time())
                if left <= 0 and (expiry := follow.expired(time.time())) is not None:
                    if expiry.delete:
                        await hook.delete(self.name, self.namespace, uid=self.uid)
                    kind: EventKind = "error" if expiry.kind == "startup" else "deadline"
                    return self._event(kind, expiry.message)
                got = await _events.next_of(
                    jobs.queue, pods.queue, timeout=max(0.05, min(left, self.poll_interval))
                )
                if got is None:  # quiet: only a watch in trouble makes us read the job ourselves
                    if not jobs.healthy:
                        await self._reread(hook, follow)
                elif got[0] is jobs.queue:
                    self._job_event(follow, got[1])
                else:
                    self._pod_event(hook, follow, got[1])
            await self._settle(hook, follow, pods)
            if self.get_logs:
                await self._drain(follow)
            return self._finished(follow)

    async def _first(
        self,
        hook: AsyncTFJobHook,
        jobs: _shared_watch.Subscription,
        pods: _shared_watch.Subscription,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The job as the shared watch has it (no request when it is in sync), else read; and
        the pod events that came first."""
        early: list[dict[str, Any]] = []
        began = time.monotonic()
        while True:
            waited = time.monotonic() - began
            left = self.poll_interval - waited
            if left <= 0 and jobs.listing and waited < FIRST_LIST_PATIENCE:
                left = 1.0  # the watch's first list is under way and has not failed: it will tell
            if left <= 0:
                break
            got = await _events.next_of(jobs.queue, pods.queue, timeout=left)
            if got is None:
                continue
            if got[0] is jobs.queue:
                if got[1]["type"] in ("DELETED", "ABSENT"):  # a deletion ends the wait here
                    raise errors.TFJobError(f"TFJob {self.where} {follow_mod.DELETED}")
                return got[1]["object"], early
            early.append(got[1])
        return await self._get(hook), early

    async def _get(self, hook: AsyncTFJobHook) -> dict[str, Any]:
        try:
            return await hook.get(self.name, self.namespace)
        except errors.TFJobNotFound:
            raise errors.TFJobError(f"TFJob {self.where} {follow_mod.DELETED}") from None

    async def _reread(self, hook: AsyncTFJobHook, follow: Follow) -> None:
        """Read the job while the watch reconnects; an unavailable API is not yet a failure
        (the watch keeps trying, and the deadlines still hold)."""
        try:
            obj = await self._get(hook)
        except errors.TFJobUnavailable as exc:
            self.log.warning("TFJob %s: cannot read it now (%s); still waiting", self.where, exc)
            return
        if follow.job(obj):
            self.log.info("TFJob %s: %s", self.where, follow.state.summary())

    async def _settle(
        self, hook: AsyncTFJobHook, follow: Follow, pods: _shared_watch.Subscription
    ) -> None:
        """Bring the ledger up to the job's final state: from the pod watch, which may trail the
        job's by moments, else (no sign of the pods within SETTLE_SECONDS) from one list."""
        ends = time.monotonic() + SETTLE_SECONDS
        while True:
            while not pods.queue.empty():
                self._pod_event(hook, follow, pods.queue.get_nowait())
            if follow.explained():
                return
            got = await _events.next_of(pods.queue, timeout=ends - time.monotonic())
            if got is None:
                break
            self._pod_event(hook, follow, got[1])
        self.log.info(
            "TFJob %s: its pods did not show on the pod watch within %.0f s; listing them",
            self.where,
            SETTLE_SECONDS,
        )
        with contextlib.suppress(errors.TFJobError):  # pods may be gone (cleanPodPolicy All)
            for pod in (await hook.list_pods(self.name, self.namespace))[0]:
                follow.pod(pod)

    def _job_event(self, follow: Follow, event: dict[str, Any]) -> None:
        if event["type"] in ("DELETED", "ABSENT"):
            follow.gone()
        if follow.job(event["object"]):
            self.log.info("TFJob %s: %s", self.where, follow.state.summary())

    def _pod_event(self, hook: AsyncTFJobHook, follow: Follow, event: dict[str, Any]) -> None:
        pod = event["object"]
        if event["type"] == "ABSENT" or not pod.get("status"):
            return
        outcome = follow.pod(pod, deleted=event["type"] == "DELETED")
        if self.get_logs and status.has_run(pod) and outcome.pod not in self._followers:
            self._followers[outcome.pod] = asyncio.create_task(
                self._stream_log(hook, follow, outcome), name=outcome.pod
            )

    async def _stream_log(
        self, hook: AsyncTFJobHook, follow: Follow, outcome: status.ReplicaOutcome
    ) -> None:
        """Print a replica's log until its pod has finished: a container restarted in place is
        followed again from where its log was read (no line twice, none lost)."""
        cursor, backoff = (
            self._cursors.setdefault(outcome.replica, LogCursor()),
            Backoff(cap=LOG_BACKOFF_CAP),
        )
        while True:
            read = cursor.lines
            try:
                async for line in hook.stream_log(
                    outcome.pod, self.namespace, since_time=cursor.begin(), timestamps=True
                ):
                    text = cursor.accept(line)
                    if text is not None:
                        self.log.info("[%s] %s", outcome.replica, text)
            except errors.TFJobNotFound:
                return  # the pod is gone
            except errors.TFJobError:
                pass  # not started yet, or a dropped stream: look again
            if outcome.pod in follow.ledger.finished_pods:
                return
            if cursor.lines > read:
                backoff.reset()
            await asyncio.sleep(backoff.next())

    async def _drain(self, follow: Follow) -> None:
        """Let the logs of finished pods be read to their end (up to ``LOG_DRAIN_SECONDS``)
        before the outcome is told: the last lines come before the failure message."""
        ending = [t for pod, t in self._followers.items() if pod in follow.ledger.finished_pods]
        if ending:
            await asyncio.wait(ending, timeout=LOG_DRAIN_SECONDS)

    def _finished(self, follow: Follow) -> TFJobEvent:
        event = self._event("finished", f"TFJob {self.where} {follow.state.phase}")
        event["result"] = follow.result()
        cursors = self._cursors
        event["failure"] = follow.failure(
            lambda replica: list(cursors[replica].tail) if replica in cursors else []
        )
        return event

    def _event(self, kind: EventKind, message: str) -> TFJobEvent:
        return TFJobEvent(
            kind=kind,
            name=self.name,
            namespace=self.namespace,
            uid=self.uid,
            message=message,
            result=None,
            failure=None,
        )

    async def cleanup(self) -> None:
        """Release local resources only (log streams); the job keeps running."""
        for task in self._followers.values():
            task.cancel()

    async def on_kill(self) -> None:
        """Airflow removed the trigger (3.3+). After this trigger ended the task, that is the sign
        its end is recorded: apply ``on_finish_action``. Before, a user killed or marked the task:
        delete the job (``on_kill_action``).

        Shielded: Airflow 3.3's triggerer cancels a removed trigger again at every turn of its
        loop (about 1 s), and would cut a deletion short on a busy triggerer; the shielded
        deletion runs to its end whatever happens to this coroutine."""
        hook = self._hook or self.hook()
        await asyncio.shield(self._removed(hook))

    async def _removed(self, hook: AsyncTFJobHook) -> None:
        if self._ended is not None:
            await self._finish(hook, self._ended)
        elif self.on_kill_action == "delete_tfjob":
            await hook.delete(self.name, self.namespace, uid=self.uid)
            self.log.info("Deleted TFJob %s: the task was killed", self.where)


def _task_end_event(ended: outcome.Verdict, ending: outcome.Ending) -> TriggerEvent:
    """The event that ends the task in the triggerer, with the XComs the worker would push."""
    if ended.ok:
        return TaskSuccessEvent(xcoms=ended.xcoms(ending))
    return TaskSkippedEvent() if ended.skip else TaskFailedEvent()
