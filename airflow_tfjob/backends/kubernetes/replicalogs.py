"""``ReplicaLogs``: a job's replica logs printed into the task log, each line once.

Each pod's log is streamed while ``logstreams`` grants it a live stream (the job's output replica
first), else read when its pod ends, from where it was read (``LogCursor``: no line twice, none
lost); a container restarted in place is followed again from there, and a pod re-created under
the same name is another pod (by uid). Once the job has ended every log is read at once: its
controller may delete the pods (``cleanPodPolicy``, a TTL). What could not be read is said
(``UNREAD_LOG``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import logstreams
from airflow_tfjob.backends.kubernetes.backoff import LOG_BACKOFF_CAP, Backoff
from airflow_tfjob.backends.kubernetes.logcursor import LogCursor
from airflow_tfjob.backends.kubernetes.messages import AGAIN, LATER, UNREAD_LOG
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import status
from airflow_tfjob.rules.follow import LOG_DRAIN_SECONDS, Follow
from airflow_tfjob.rules.jobref import JobRef


class ReplicaLogs:
    """The replica logs of one job, printed into ``log``."""

    def __init__(self, hook: AsyncTFJobHook, job: JobRef, log: Any) -> None:
        self.hook, self.job, self.log = hook, job, log
        self.streams: dict[str, asyncio.Task[None]] = {}
        """Pod uid -> the task following its log. By uid, not name: the training operator
        re-creates an evicted or ``ExitCode``-retried replica under the same pod name."""
        self.cursors: dict[str, LogCursor] = {}
        """Pod uid -> where its log was read to, and its last lines (for the failure message)."""
        self.uids: dict[str, str] = {}
        """Pod name -> the uid of the last pod seen under it."""
        self.ended_pods: dict[str, asyncio.Event] = {}
        """Pod uid -> set once its log can be read to its end (its pod or its job ended)."""

    def positions(self) -> dict[str, list[Any]]:
        """Pod uid -> where its log has been read to (``LogCursor.position``)."""
        return {uid: cursor.position() for uid, cursor in self.cursors.items() if cursor.lines}

    def resume(self, positions: Mapping[str, object]) -> None:
        """Go on from ``positions`` saved by an earlier follower of the same job (as stored:
        ``LogCursor.at`` starts from the beginning where one is not a position)."""
        for uid, position in positions.items():
            self.cursors[uid] = LogCursor.at(position)

    def tail(self, pod_key: str) -> list[str]:
        """The last lines read of a pod's log (for the failure message)."""
        cursor = self.cursors.get(pod_key)
        return list(cursor.tail) if cursor is not None else []

    async def close(self) -> None:
        """Stop following logs (the job keeps running)."""
        for task in self.streams.values():
            task.cancel()
        await asyncio.gather(*self.streams.values(), return_exceptions=True)

    def job_ended(self) -> None:
        """The job has ended: read every log now (its controller may delete the pods)."""
        for ended in self.ended_pods.values():
            ended.set()

    def pod(
        self, follow: Follow, outcome: status.ReplicaOutcome, pod: KubeObject, kind: str
    ) -> None:
        """A pod event (``kind``: ADDED, MODIFIED, DELETED, ...) after ``follow`` took it."""
        if kind != "DELETED":
            self.uids[outcome.pod] = outcome.pod_key
        if outcome.pod_key in follow.ledger.finished_pods or kind == "DELETED":
            self.ended(outcome.pod_key).set()
        if status.has_run(pod) and outcome.pod_key not in self.streams:
            self.streams[outcome.pod_key] = asyncio.create_task(
                self._stream(follow, outcome), name=outcome.pod
            )

    def ended(self, pod_key: str) -> asyncio.Event:
        return self.ended_pods.setdefault(pod_key, asyncio.Event())

    async def _stream(self, follow: Follow, outcome: status.ReplicaOutcome) -> None:
        """Print a pod's log until it has finished: live while ``logstreams`` grants it a
        stream, else at its end, from where it was read (no line twice, none lost). A container
        restarted in place is followed again from there too. The log is read by pod name, so it
        stops once another pod (a re-created replica) has taken the name."""
        cursor = self.cursors.setdefault(outcome.pod_key, LogCursor())
        backoff = Backoff(cap=LOG_BACKOFF_CAP)  # short: a drain must not wait out a delay
        budget, ended = logstreams.budget(), self.ended(outcome.pod_key)
        slot: logstreams.Slot | None = None
        whole = False  # the last read ended where the log did (not cut, not refused)
        failed: errors.TFJobError | None = None  # why the last read did not, if refused
        try:
            while True:
                read = cursor.lines
                if ended.is_set():  # all its lines are there: read them to the end
                    self._give_back(budget, slot)
                    slot = None
                    async with budget.end_reads:
                        read_to_end, failed = await self._read(outcome, cursor, whole)
                else:
                    slot = slot or self._ask(budget, follow, outcome)
                    if not await _first(slot.granted, ended):
                        continue  # its pod ended before a stream was free: read it at its end
                    read_to_end, failed = await self._read(outcome, cursor, whole, slot.revoked)
                if read_to_end is None:  # its pod was deleted
                    return
                whole = read_to_end
                if self._renamed(outcome) or (whole and self._done(follow, outcome)):
                    return
                if cursor.lines > read:
                    backoff.reset()
                delay = backoff.next()
                if isinstance(failed, errors.TFJobUnavailable):
                    what = f"follow the log of {outcome.pod}"
                    self.log.warning(AGAIN, self.job.where, what, failed, delay)
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if not whole and outcome.pod_key in follow.ledger.finished_pods:
                why = f"stopped after {LOG_DRAIN_SECONDS:.0f} s"
                if failed is not None:
                    why = f"{why}; the last try: {failed}"
                self._log_unread(outcome, cursor, why)
            raise
        finally:
            self._give_back(budget, slot)

    def _ask(
        self, budget: logstreams.Budget, follow: Follow, outcome: status.ReplicaOutcome
    ) -> logstreams.Slot:
        """A live stream for ``outcome``'s log, by its rank; said once if it must wait."""
        output = outcome.replica == follow.ledger.output_replica
        slot = budget.request(0 if output else 1 + status.replica_index(outcome.replica))
        if not slot.granted.is_set():
            self.log.info(LATER, self.job.where, outcome.replica, budget.cap)
        return slot

    @staticmethod
    def _give_back(budget: logstreams.Budget, slot: logstreams.Slot | None) -> None:
        if slot is not None:
            budget.release(slot)

    async def _read(
        self,
        outcome: status.ReplicaOutcome,
        cursor: LogCursor,
        whole: bool,
        revoked: asyncio.Event | None = None,
    ) -> tuple[bool | None, errors.TFJobError | None]:
        """Print ``outcome``'s log from the cursor on, until it ends or ``revoked`` is set:
        whether it was read to its end (None: its pod is gone), and why not when the API
        server refused it. ``whole``: the last read did end where the log did."""
        reading = asyncio.create_task(self._print(outcome, cursor))
        try:
            if revoked is not None and not await _first(reading, revoked):
                reading.cancel()  # a higher-ranked replica took the stream: go on later
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
                return False, None
            await reading
            return True, None
        except errors.TFJobNotFound:
            if not whole:  # never silently: its lines were there, and are gone with it
                self._log_unread(outcome, cursor, "its pod was deleted first")
            return None, None
        except errors.TFJobError as exc:
            # a dropped stream, a 5xx/429 (said), or no log yet (not started, on no node): look
            # again (a finished pod's log is there)
            return False, exc
        finally:
            reading.cancel()

    async def _print(self, outcome: status.ReplicaOutcome, cursor: LogCursor) -> None:
        lines = self.hook.stream_log(
            outcome.pod, self.job.namespace, since_time=cursor.begin(), timestamps=True
        )
        async with contextlib.aclosing(lines):
            async for line in lines:
                text = cursor.accept(line)
                if text is not None:
                    self.log.info("[%s] %s", outcome.replica, text)

    def _log_unread(self, outcome: status.ReplicaOutcome, cursor: LogCursor, why: str) -> None:
        self.log.warning(UNREAD_LOG, self.job.where, outcome.pod, cursor.lines, why)

    def _done(self, follow: Follow, outcome: status.ReplicaOutcome) -> bool:
        """Whether ``outcome``'s pod has finished, or another pod has taken its name."""
        return outcome.pod_key in follow.ledger.finished_pods or self._renamed(outcome)

    def _renamed(self, outcome: status.ReplicaOutcome) -> bool:
        """Whether another pod (a re-created replica) has taken ``outcome``'s pod name."""
        key = outcome.pod_key
        return self.uids.get(outcome.pod, key) != key

    async def drain(self, follow: Follow) -> None:
        """Let the logs of finished pods be read to their end (up to ``LOG_DRAIN_SECONDS``)
        before the outcome is told: the last lines come before the failure message."""
        ending = [t for key, t in self.streams.items() if key in follow.ledger.finished_pods]
        if ending:
            await asyncio.wait(ending, timeout=LOG_DRAIN_SECONDS)


async def _first(first: asyncio.Event | asyncio.Task[None], other: asyncio.Event) -> bool:
    """Wait until ``first`` (an event set, a task done) or ``other`` (an event set): whether
    ``first`` came (checked first when both have)."""

    def came() -> bool:
        return first.done() if isinstance(first, asyncio.Task) else first.is_set()

    if came() or other.is_set():
        return came()
    waiting = first if isinstance(first, asyncio.Task) else asyncio.ensure_future(first.wait())
    watching = asyncio.ensure_future(other.wait())
    try:
        await asyncio.wait({waiting, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if waiting is not first:
            waiting.cancel()
    return came()
