"""One watch stream per (cluster, namespace, resource) and event loop, for every follower on it.

A thousand deferred tasks must not mean a thousand watches. Followers (``JobFollower``: a
triggerer's triggers, a worker's one job) ``subscribe`` to the objects they care about; a
reference-counted registry per event loop (``registry``; a triggerer runs one loop) runs one
``SharedWatch`` per key and fans events out to the subscribers' queues, closing the stream when
the last one leaves.

Reconnection, in kopf's three layers: an endless loop with backoff (trivial), list-then-watch from
the list's resourceVersion (410 Gone means list again), and one bounded watch stream. After every
(re)list, each subscriber receives its object's current state, so no transition that happened while
the stream was down is missed.

Each watch keeps the last state of every object it has seen (an informer's store), so a trigger that
subscribes to a watch already in sync gets its job and pods from memory at once: a thousand triggers
resuming after a triggerer restart make no request of their own. ``healthy`` says whether the store
can be trusted right now; while it cannot, triggers read for themselves.

What is not ours costs little: a namespace may hold thousands of jobs and pods that Airflow did
not create.

- The job watch (``tfjobs``: the jobs of the hook's API, a TrainJob read as a TFJob) lists and
  watches only the jobs this provider labels (``naming.selector()``), so the API server filters
  the others out. A subscriber whose job is not among them (a sensor waiting for a job Airflow
  did not create, or a job deleted while the stream was down) is handed to a watch of that one
  job (a field selector on its name), which tells it the job's state, or that it is gone.
- The pod watch of a job the provider created lists and watches only the pods that carry the
  task identity labels the provider puts on every replica's pod template
  (``naming.POD_SELECTOR``; the training operator copies template labels to its pods). A job
  whose pods do not carry them (not ours, or created by a provider before it labelled them), and
  a TrainJob (its view shows no pod templates to tell by), is followed through a second watch, of
  every job's pods, which keeps only those of jobs in the job store or that someone follows
  (``pods_kind``).
- The store keeps only the fields a follower reads (``slim``): no pod specs, no templates but
  their labels, no ``managedFields``; and keeps them as compact JSON, decoded again only to
  replay them.

Every event is routed through an index (routed name -> subscribers): no event scans them all. A
(re)list is read a page at a time (``watchsource.LIST_PAGE``) into a new store, each subscriber told
its object's state as its page comes, so a namespace of 10,000 objects is never decoded whole. A
watch that starts failing tells its subscribers (``STALE``): while it is healthy they need not wake
up to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import logstreams, registry
from airflow_tfjob.backends.kubernetes.backoff import Backoff
from airflow_tfjob.backends.kubernetes.inbox import Events
from airflow_tfjob.backends.kubernetes.objects import (
    PODS,
    by_job_label,
    by_name,
    own_key,
    packed,
    slim,
)
from airflow_tfjob.backends.kubernetes.watchsource import Source
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.model.kube import KubeObject, ObjectMeta, WatchEvent
from airflow_tfjob.rules.status import JOB_NAME_LABEL

log = logging.getLogger(__name__)

HANDOFF_SECONDS = 2.0
"""How long a subscriber to a TFJob watch in sync waits for its job to show up in it (a job just
created may trail) before it is handed to a watch of its own job."""
Route = Callable[[KubeObject], str | None]
Ident = registry.Ident
Opening = tuple[str, AsyncTFJobHook, str, str, bool]
"""What a subscription needs to find its watch: key, hook, namespace, kind, alone."""


class Subscription:
    """Events about object ``name`` from the loop's shared watch of (``key``, namespace, kind),
    put into ``queue`` (a new one by default): ``async with subscribe(...) as sub``.

    Subscriptions may share one queue (a follower reads its job's and its pods' events from one):
    each event carries its ``kind``. ``alone``: from a watch of that one object (a TFJob by name,
    a job's pods by its label), for a process that follows one job and should not list a
    namespace for it. A TFJob subscriber whose job is not among ours moves to a watch of its own
    job: ``watch`` changes, the queue stays."""

    __slots__ = ("_opening", "name", "queue", "watch")

    def __init__(
        self,
        key: str,
        hook: AsyncTFJobHook,
        namespace: str,
        kind: str,
        name: str,
        *,
        queue: Events | None = None,
        alone: bool = False,
    ) -> None:
        self.name = name
        self.queue = Events() if queue is None else queue
        self.watch: SharedWatch | None = None
        self._opening: Opening | None = (key, hook, namespace, kind, alone)

    @property
    def healthy(self) -> bool:
        """Whether the queue is being kept current (else read the object yourself)."""
        return self.watch is not None and self.watch.healthy

    @property
    def listing(self) -> bool:
        """Whether the watch is still making its first list (its replay is on the way)."""
        return self.watch is not None and self.watch.listing

    async def __aenter__(self) -> Subscription:
        assert self._opening is not None, "a subscription is entered once"
        key, hook, namespace, kind, alone = self._opening
        self._opening = None
        ident = (key, namespace, kind, self.name) if alone else (key, namespace, kind)
        opened = registry.opened()
        watch = opened.get(ident)
        if watch is None:
            only = self.name if alone else None
            watch = opened[ident] = SharedWatch(hook, namespace, kind, ident=ident, only=only)
        watch.add(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        watch = self.watch  # it may have been handed to a watch of its own job
        opened = registry.opened()
        if watch is not None and watch.remove(self) and opened.get(watch.ident) is watch:
            del opened[watch.ident]
            await watch.close()


class SharedWatch:
    """One list+watch loop over a namespace (or one job: ``only``), fanning events out by routed
    name."""

    def __init__(
        self,
        hook: AsyncTFJobHook,
        namespace: str,
        kind: str,
        *,
        ident: Ident = (),
        only: str | None = None,
    ) -> None:
        self.hook, self.namespace, self.kind, self.only = hook, namespace, kind, only
        self.source = Source(hook, namespace, kind, only)
        """What this watch lists and watches."""
        self.ident = ident or ("", namespace, kind)
        self.route: Route = by_name if kind == "tfjobs" else by_job_label
        self.subscribers: dict[str, set[Subscription]] = {}
        """Routed name -> its subscribers (the index every event goes through)."""
        self.store: dict[str, dict[str, str]] = {}
        """Routed name -> object uid (``own_key``) -> its last state seen (``slim``, ``packed``)."""
        self.synced = False
        """Whether the store reflects a list plus every event since (false while reconnecting)."""
        self.filling = False
        """Whether a list is being read into the store, a page at a time (what it holds so far is
        current: a subscriber is told it at once, the rest as the pages come)."""
        self.failing = False
        """Whether the last list or stream failed (true until a list succeeds again)."""
        self.task: asyncio.Task[None] | None = None
        self.connects = 0
        """How many times the stream was (re)opened (for tests and metrics)."""
        self.dropped = 0
        """Events about objects not ours and followed by no one (not kept)."""
        self._checks: set[asyncio.Task[None]] = set()

    @property
    def listing(self) -> bool:
        """Whether a list is under way that has not failed (after a start or a 410)."""
        return not self.synced and not self.failing and self.task is not None

    @property
    def healthy(self) -> bool:
        """Whether the store is current: listed, and the stream up or being resumed."""
        return self.synced and self.task is not None and not self.task.done()

    @property
    def selects_ours(self) -> bool:
        """The namespace's TFJob watch: it sees only the jobs this provider labels."""
        return self.kind == "tfjobs" and self.only is None

    def add(self, sub: Subscription) -> None:
        """Subscribe; a watch in sync (or reading a list) replays its stored state at once."""
        sub.watch = self
        self.subscribers.setdefault(sub.name, set()).add(sub)
        if self.synced or self.filling:
            stored = self.store.get(sub.name, {})
            for text in stored.values():
                sub.queue.put_nowait(
                    {"type": "LISTED", "kind": self.kind, "object": json.loads(text)}
                )
            if not stored and self.synced and self.selects_ours:
                self._check_later(sub.name)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(
                self._run(), name=f"tfjob-shared-watch-{self.namespace}-{self.kind}"
            )
            self.task.add_done_callback(self._stopped)

    def remove(self, sub: Subscription) -> bool:
        """Drop a subscriber; True when none is left (the caller then closes the watch)."""
        subscribers = self.subscribers.get(sub.name, set())
        subscribers.discard(sub)
        if not subscribers:
            self.subscribers.pop(sub.name, None)
            if not self._ours(sub.name):  # a pod store keeps only what is ours or followed
                self.store.pop(sub.name, None)
        return not self.subscribers

    async def close(self) -> None:
        for check in list(self._checks):
            if check is not asyncio.current_task():
                check.cancel()
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task])  # stopped: cancelled, or by a bug already logged

    def _ours(self, name: str) -> bool:
        """Whether ``name`` is a job this provider created, as far as this watch can tell."""
        if self.kind != PODS or self.only is not None:
            return True  # the server selected it
        jobs = registry.opened().get((self.ident[0], self.namespace, "tfjobs"))
        return jobs is not None and name in jobs.store

    def _dispatch(self, event: WatchEvent) -> None:
        obj = event.get("object") or {}
        name = self.route(obj) or ""
        subscribers = self.subscribers.get(name)
        if event["type"] == "DELETED":
            named = self.store.get(name)
            if named is not None:
                named.pop(own_key(obj), None)
                if not named:
                    del self.store[name]
            if subscribers:
                event = {"type": "DELETED", "kind": self.kind, "object": slim(self.kind, obj)}
        elif event["type"] != "ABSENT" and name:
            if subscribers is None and not self._ours(name):
                self.dropped += 1
                return
            obj = slim(self.kind, obj)
            self.store.setdefault(name, {})[own_key(obj)] = packed(obj)
            event = {"type": event["type"], "kind": self.kind, "object": obj}
        for sub in subscribers or ():
            sub.queue.put_nowait(event)

    def _check_later(self, name: str) -> None:
        async def check() -> None:
            await asyncio.sleep(HANDOFF_SECONDS)
            if self.synced and name in self.subscribers and name not in self.store:
                self._hand_off(name)

        task = asyncio.create_task(check(), name=f"tfjob-watch-handoff-{name}")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def _hand_off(self, name: str) -> None:
        """Move ``name``'s subscribers to a watch of that one job (not labelled as ours, or
        gone: that watch will tell)."""
        subscribers = self.subscribers.pop(name, set())
        if not subscribers:
            return
        key = self.ident[0]
        ident = (key, self.namespace, "tfjobs", name)
        opened = registry.opened()
        target = opened.get(ident)
        if target is None:
            target = opened[ident] = SharedWatch(
                self.hook, self.namespace, "tfjobs", ident=ident, only=name
            )
        log.debug("TFJob %s/%s is not labelled as ours: watching it alone", self.namespace, name)
        for sub in subscribers:
            target.add(sub)
        if not self.subscribers and opened.get(self.ident) is self:
            del opened[self.ident]
            closing = asyncio.create_task(self.close(), name="tfjob-watch-close")
            tasks = registry.closing()
            tasks.add(closing)
            closing.add_done_callback(tasks.discard)

    async def _run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            key = self.ident[0]
            if key:  # its lists and streams through this loop's one client of its cluster
                session = self.hook.client_session(key, logstreams.max_live())
                # a configuration that fails fails each call too, which says why as it retries
                with contextlib.suppress(Exception):
                    await stack.enter_async_context(session)
            await self._follow()

    async def _follow(self) -> None:
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
                if not self.failing:  # wake the subscribers: they read for themselves meanwhile
                    self._stale()
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
        """List into a new store, a page at a time (no list is ever decoded whole), telling each
        subscriber its object's state as its page comes; then those without one are told."""
        async with registry.relisting(self.ident[0]):  # one list in memory at a time; jobs first
            self.store, self.filling = {}, True
            present: set[str] = set()
            version = ""
            try:
                async with contextlib.aclosing(self.source.pages()) as pages:
                    async for items, listed in pages:
                        version = listed
                        for obj in items:
                            present.add(self.route(obj) or "")
                            self._dispatch({"type": "LISTED", "object": obj})
            finally:
                self.filling = False
        for name in [n for n in self.subscribers if n not in present]:
            if self.selects_ours:  # not ours, or gone while we were not watching: ask its own
                self._hand_off(name)
                continue
            meta: ObjectMeta = {"name": name, "labels": {JOB_NAME_LABEL: name}}
            self._dispatch({"type": "ABSENT", "kind": self.kind, "object": {"metadata": meta}})
        self.synced, self.failing = True, False
        return version

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """A watch stops only when closed, unless a bug stops it: then its subscribers are told
        (``STALE``), and read for themselves from then on (it is no longer ``healthy``)."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("the shared watch of %s in %s stopped: %r", self.kind, self.namespace, exc)
            self._stale()

    def _stale(self) -> None:
        """Tell every subscriber that the store is no longer kept current."""
        event: WatchEvent = {"type": "STALE", "kind": self.kind, "object": {}}
        for subscribers in self.subscribers.values():
            for sub in subscribers:
                sub.queue.put_nowait(event)

    async def _stream(self, version: str) -> str:
        self.connects += 1
        async with contextlib.aclosing(self.source.events(version)) as events:
            async for event in events:
                version = (event["object"].get("metadata") or {}).get("resourceVersion") or version
                if event["type"] != "BOOKMARK":
                    self._dispatch(event)
        return version


subscribe = Subscription
"""``async with subscribe(key, hook, namespace, kind, name) as sub``."""


def active() -> dict[Ident, SharedWatch]:
    """The watches currently open in this process (on every loop)."""
    return registry.active()
