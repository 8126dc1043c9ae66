"""One watch stream per (cluster, namespace, resource) for every trigger in a triggerer process.

A thousand deferred tasks must not mean a thousand watches. Triggers ``subscribe`` to the objects
they care about; a process-wide, reference-counted registry runs one ``SharedWatch`` per key and
fans events out to the subscribers' queues, closing the stream when the last one leaves.

Reconnection, in kopf's three layers: an endless loop with backoff (trivial), list-then-watch
from the list's resourceVersion (410 Gone means list again), and one bounded watch stream. After
every (re)list, each subscriber receives its object's current state, so no transition that
happened while the stream was down is missed.

Each watch keeps the last state of every object it has seen (an informer's store), so a trigger
that subscribes to a watch already in sync gets its job and pods from memory at once: a
thousand triggers resuming after a triggerer restart make no request of their own. ``healthy``
says whether the store can be trusted right now; while it cannot, triggers read for themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.spec.backoff import Backoff
from airflow_tfjob.spec.status import JOB_NAME_LABEL

log = logging.getLogger(__name__)

STREAM_SECONDS = 120
"""Server-side length of one watch stream (the hooks end a stream silent for longer)."""
Route = Callable[[dict[str, Any]], str | None]


def by_name(obj: dict[str, Any]) -> str | None:
    """TFJobs are routed by their own name."""
    return (obj.get("metadata") or {}).get("name")


def by_job_label(obj: dict[str, Any]) -> str | None:
    """Pods are routed by the operator's job-name label."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL)


class SharedWatch:
    """One list+watch loop over a namespace, fanning events out by routed name."""

    def __init__(self, hook: AsyncTFJobHook, namespace: str, kind: str) -> None:
        self.hook, self.namespace, self.kind = hook, namespace, kind
        self.route: Route = by_name if kind == "tfjobs" else by_job_label
        self.queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        """Routed name -> object name -> the object's last state seen."""
        self.synced = False
        """Whether the store reflects a list plus every event since (false while reconnecting)."""
        self.failing = False
        """Whether the last list or stream failed (true until a list succeeds again)."""
        self.task: asyncio.Task[None] | None = None
        self.connects = 0
        """How many times the stream was (re)opened (for tests and metrics)."""

    @property
    def listing(self) -> bool:
        """Whether a list is under way that has not failed (after a start or a 410)."""
        return not self.synced and not self.failing and self.task is not None

    @property
    def healthy(self) -> bool:
        """Whether the store is current: listed, and the stream up or being resumed."""
        return self.synced and self.task is not None and not self.task.done()

    def add(self, name: str) -> asyncio.Queue[dict[str, Any]]:
        """Subscribe to ``name``; a watch in sync replays its stored state at once."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queues.setdefault(name, set()).add(queue)
        if self.synced:
            for obj in self.store.get(name, {}).values():
                queue.put_nowait({"type": "LISTED", "object": obj})
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(
                self._run(), name=f"tfjob-shared-watch-{self.namespace}-{self.kind}"
            )
        return queue

    def remove(self, name: str, queue: asyncio.Queue[dict[str, Any]]) -> bool:
        """Drop a subscriber; True when none is left (the caller then closes the watch)."""
        subscribers = self.queues.get(name, set())
        subscribers.discard(queue)
        if not subscribers:
            self.queues.pop(name, None)
        return not self.queues

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def _dispatch(self, event: dict[str, Any]) -> None:
        obj = event.get("object") or {}
        name = self.route(obj) or ""
        own = (obj.get("metadata") or {}).get("name") or ""
        if event["type"] == "DELETED":
            self.store.get(name, {}).pop(own, None)
        elif event["type"] != "ABSENT" and name:
            self.store.setdefault(name, {})[own] = obj
        for queue in self.queues.get(name, ()):
            queue.put_nowait(event)

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                version = await self._relist()
                while True:
                    version = await self._stream(version)
                    backoff.reset()
            except errors.TFJobWatchExpired:
                self.synced = False  # not failing: listing again at once is the cure
                log.debug(
                    "watch of %s in %s expired (410); listing again", self.kind, self.namespace
                )
            except errors.TFJobError as exc:
                self.synced, self.failing = False, True
                delay = backoff.next()
                log.debug(
                    "watch of %s in %s failed: %s; reconnecting in %.1f s",
                    self.kind,
                    self.namespace,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _relist(self) -> str:
        if self.kind == "tfjobs":
            items, version = await self.hook.list_jobs(self.namespace)
        else:
            items, version = await self.hook.list_pods(None, self.namespace)
        self.store = {}
        for obj in items:
            self._dispatch({"type": "LISTED", "object": obj})
        for name in list(self.queues):  # gone while we were not watching
            if not any(self.route(o) == name for o in items):
                self._dispatch(
                    {
                        "type": "ABSENT",
                        "object": {"metadata": {"name": name, "labels": {JOB_NAME_LABEL: name}}},
                    }
                )
        self.synced, self.failing = True, False
        return version

    async def _stream(self, version: str) -> str:
        self.connects += 1
        stream = (
            self.hook.watch(
                self.namespace, resource_version=version, timeout_seconds=STREAM_SECONDS
            )
            if self.kind == "tfjobs"
            else self.hook.watch_pods(
                None, self.namespace, resource_version=version, timeout_seconds=STREAM_SECONDS
            )
        )
        async for event in stream:
            version = (event["object"].get("metadata") or {}).get("resourceVersion") or version
            if event["type"] != "BOOKMARK":
                self._dispatch(event)
        return version


_REGISTRY: dict[tuple[str, str, str], SharedWatch] = {}


@dataclasses.dataclass(frozen=True)
class Subscription:
    """One subscriber's queue of events, and the watch that fills it."""

    queue: asyncio.Queue[dict[str, Any]]
    watch: SharedWatch

    @property
    def healthy(self) -> bool:
        """Whether the queue is being kept current (else read the object yourself)."""
        return self.watch.healthy

    @property
    def listing(self) -> bool:
        """Whether the watch is still making its first list (its replay is on the way)."""
        return self.watch.listing


@contextlib.asynccontextmanager
async def subscribe(
    key: str, hook: AsyncTFJobHook, namespace: str, kind: str, name: str
) -> AsyncIterator[Subscription]:
    """Events for object ``name`` from the process-wide watch of (``key``, namespace, kind)."""
    ident = (key, namespace, kind)
    watch = _REGISTRY.get(ident)
    if watch is None:
        watch = _REGISTRY[ident] = SharedWatch(hook, namespace, kind)
    queue = watch.add(name)
    try:
        yield Subscription(queue, watch)
    finally:
        if watch.remove(name, queue) and _REGISTRY.get(ident) is watch:
            del _REGISTRY[ident]
            await watch.close()


def active() -> dict[tuple[str, str, str], SharedWatch]:
    """The watches currently open in this process."""
    return dict(_REGISTRY)
