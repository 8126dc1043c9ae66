"""``TFJobTrigger``: wait for a TFJob or TrainJob in the triggerer, without holding a worker slot.

It runs the same ``JobFollower`` as a synchronous task does on its worker (one engine: the job's
status and pods through the shared watches of the triggerer's event loop, its replicas' logs, the
limits and the failure report of ``rules.follow``). Everything it needs is in its kwargs
(``serialize``), connection settings and the job's API included (resolved on the worker; Airflow
encrypts trigger kwargs), and deadlines are absolute, so a triggerer restart resumes exactly where
it was. It deletes the job only on a deadline or in ``on_kill`` (a user killed the task) — never
in ``cleanup``, which also runs when a triggerer merely restarts.

With ``end_from_trigger`` (the default of the operator, ``@task.tfjob`` and the sensor) it ends
the task itself in the triggerer: ``TaskSuccessEvent`` with the XComs the worker would push, or
``TaskFailedEvent`` (``TaskSkippedEvent`` for a soft-failing sensor) after logging the failure
report into the task log. No second worker run, so the scheduler's stale "the worker exited
after defer()" event cannot fail a task whose job finished fast (apache/airflow#66374 and kin).
``on_finish_action`` is applied once Airflow has recorded the task's end: Airflow then removes the
trigger and calls ``on_kill``, which deletes the job if the action says so. A triggerer that stops
before that runs the trigger again from the job, which still exists: the outcome is never lost.
Where no task instance is attached (``dag.test()`` runs triggers inline), the worker resumes as
before and ``execute_complete`` applies the same rules (``rules.outcome``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import (
    BaseTrigger,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from airflow_tfjob import errors, features
from airflow_tfjob.backends.kubernetes import logstreams
from airflow_tfjob.backends.kubernetes.follower import JobFollower, shared_settings
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.rules import orphans, outcome
from airflow_tfjob.rules.follow import Limits
from airflow_tfjob.rules.jobref import JobRef
from airflow_tfjob.rules.outcome import TFJobEvent
from airflow_tfjob.triggers import _logpositions, _taskstate, _xcoms
from airflow_tfjob.triggers._stall import StallGuard, health_threshold

__all__ = ["TFJobEvent", "TFJobTrigger"]
REMOVAL_WAIT_SECONDS = 300.0
"""After ending its task, how long a trigger waits for Airflow to remove it (and so to call
``on_kill``, which applies ``on_finish_action``) before it applies the action itself."""


class TFJobTrigger(BaseTrigger):
    """Fire once when a job succeeds, fails, outlives its deadline, or cannot be followed.

    :param name: The job's name.
    :param namespace: Its namespace.
    :param uid: Its uid: a namesake created later is not ours.
    :param settings: Connection settings from ``TFJobHook.trigger_settings()`` (the job's API
        among them: ``tfjob`` or ``trainjob``).
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
    :param ending: ``rules.outcome.Ending.to_dict()``: what the task makes of the event.
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
        self.name, self.namespace, self.uid = name, namespace, uid
        self._key, self.settings = shared_settings(settings)
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
        self._follower: JobFollower | None = None
        self._guard: StallGuard | None = None
        """Holds the follower's lines after a stall of the loop (in a triggerer only)."""
        self._fired = False
        """Whether ``run`` has its event: from then on the job is the task's to finish."""

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook = self.hook()
        positions = None  # None: this trigger keeps no log positions (see _follow_logged)
        if self.task_instance is not None and self.get_logs:  # before the guard counts time
            positions = await _logpositions.load(self.task_instance, self.log)
        if self.task_instance is not None:  # in a triggerer, which may lose the trigger
            self._guard = StallGuard(self.log, health_threshold())
        self._follower = JobFollower(
            hook,
            JobRef(self.name, self.namespace, self.uid),
            self._limits(),
            key=self._key,
            log=self._guard or self.log,
            get_logs=self.get_logs,
            poll_interval=self.poll_interval,
        )
        async with hook.client_session(self._key, logstreams.max_live()):
            event = await self._follow_logged(self._follower, positions)
        self._fired = True
        if not (self.end_from_trigger and self.task_instance is not None):
            yield TriggerEvent(dict(event))  # type: ignore[no-untyped-call]
            return
        ended = outcome.verdict(event, self.ending)
        if ended.ok:
            self.log.info("%s; the task ends here, in the triggerer", ended.message)
        else:
            self.log.error("%s", ended.message)
        self._ended = ended
        xcoms = ended.xcoms(self.ending)
        if xcoms and await _xcoms.push(self.task_instance, xcoms):
            xcoms = {}  # stored as a worker stores them (see triggers._xcoms)
        yield _task_end_event(ended, xcoms)
        # Airflow records the task's end, then removes this trigger and calls on_kill, which
        # applies on_finish_action. Until then the job stays: a triggerer that stops before the
        # end is recorded finds it again and fires again.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), REMOVAL_WAIT_SECONDS)
        await self._finish(hook, ended)

    async def _follow_logged(
        self, follower: JobFollower, positions: dict[str, object] | None
    ) -> TFJobEvent:
        """``_follow``; in a triggerer that follows logs (``positions`` loaded), going on with
        them from where an earlier owner of the trigger read them, and storing where this one
        reads them to (``_logpositions``)."""
        if positions is None:
            return await self._follow(follower, self._guard)
        if positions:
            follower.resume_logs(positions)
            self.log.info(
                "Going on with the logs of %d replica(s) from where this trigger's previous "
                "owner read them (a triggerer restart or hand-over)",
                len(positions),
            )
        keeper = _logpositions.Keeper(self.task_instance, follower, self._guard)
        storing = asyncio.create_task(keeper.run(), name="log-positions")
        try:
            return await self._follow(follower, self._guard)
        finally:
            storing.cancel()

    @staticmethod
    async def _follow(follower: JobFollower, guard: StallGuard | None) -> TFJobEvent:
        """The follower's event, told only once this triggerer is known to still own the
        trigger when its loop stalled (``_stall``)."""
        if guard is None:
            return await follower.run()
        watch = asyncio.create_task(guard.run(), name="stall-guard")
        try:
            event = await follower.run()
            await guard.settled()
            return event
        finally:
            watch.cancel()

    async def _finish(self, hook: AsyncTFJobHook, ended: outcome.Verdict) -> None:
        """Apply ``on_finish_action`` to the job once the task's end is recorded (at most once)."""
        if ended.kind != "finished" or self.ending.on_finish_action is None:
            return
        self._ended = None
        if not ended.delete:
            self.log.info("Keeping TFJob %s (%s)", self.where, self.ending.on_finish_action)
            try:  # a later run of this task instance (a clear) must not take it as its own
                await hook.patch(self.name, self.namespace, orphans.collected_patch(self.uid))
            except errors.TFJobError as exc:
                self.log.warning("TFJob %s: could not mark it collected (%s)", self.where, exc)
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

    async def cleanup(self) -> None:
        """Release local resources only (log streams); the job keeps running. Lines held after
        a stall are dropped: the trigger was taken from this triggerer before they were known
        to be its own.

        Airflow before 3.3 calls no ``on_kill``: there a trigger removed before it fired (a
        user's kill, a hand-over and a triggerer restart alike) is told apart here, by its task
        instance's state, as ``on_kill`` does (the cncf-kubernetes pattern)."""
        if self._follower is not None:
            await self._follower.close()
        if self._guard is not None and (dropped := self._guard.drop()):
            self.log.info("Dropped %d log lines held since the loop stalled", dropped)
        if self._fired or self.task_instance is None or features.trigger_on_kill():
            return  # fired: the job is the task's; no task instance: no triggerer removed it
        features.say_once(
            self.log,
            "trigger_on_kill",
            "This Airflow (before 3.3) calls no on_kill for a trigger: a removed TFJob trigger "
            "reads its task instance's state in cleanup() instead",
        )
        await asyncio.shield(self._removed(self._hook or self.hook()))

    async def on_kill(self) -> None:
        """Airflow removed the trigger (3.3+): a user ended the task, or the trigger was handed to
        another triggerer — Airflow says the same for both. Only a task instance that is no
        longer ``deferred`` has ended (``_taskstate``): then, after this trigger ended the task,
        apply ``on_finish_action``; before, delete the job (``on_kill_action``). A hand-over
        (still ``deferred``) or a state Airflow cannot tell keeps the job: the new owner follows
        it, and the reaper deletes it if the task did end.

        Shielded: Airflow 3.3's triggerer cancels a removed trigger again at every turn of its
        loop (about 1 s), and would cut a deletion short on a busy triggerer; the shielded
        deletion runs to its end whatever happens to this coroutine."""
        hook = self._hook or self.hook()
        await asyncio.shield(self._removed(hook))

    async def _removed(self, hook: AsyncTFJobHook) -> None:
        if self.task_instance is not None:  # None only where no triggerer runs it (tests)
            ended, state = await _taskstate.ended(self.task_instance)
            if not ended:
                self._ended = None  # the new owner applies on_finish_action, if it comes to it
                if ended is False:
                    why = "is still deferred: another triggerer follows it now"
                else:
                    why = f"could not be read ({state}): the reaper deletes it if the task ended"
                self.log.info(
                    "Keeping TFJob %s: the trigger was removed, but its task instance %s",
                    self.where,
                    why,
                )
                return
        if self._ended is not None:
            await self._finish(hook, self._ended)
        elif self.on_kill_action == "delete_tfjob":
            await hook.delete(self.name, self.namespace, uid=self.uid)
            self.log.info("Deleted TFJob %s: the task was killed", self.where)


def _task_end_event(ended: outcome.Verdict, xcoms: dict[str, Any]) -> TriggerEvent:
    """The event that ends the task in the triggerer, with the XComs not pushed yet."""
    if ended.ok:
        return TaskSuccessEvent(xcoms=xcoms or None)
    return TaskSkippedEvent() if ended.skip else TaskFailedEvent()
