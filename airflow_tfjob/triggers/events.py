"""``TFJobEventTrigger``: an event for every TFJob or TrainJob that finishes, for event-driven DAGs.

Put it in an ``AssetWatcher``; a DAG scheduled on that asset then runs once for each TFJob (or,
with ``api='trainjob'``, each Trainer v2 TrainJob) of a namespace (matching a label selector)
that reaches a phase, whoever created the job: an Airflow task, a notebook, CI. Each event carries
what ``TFJobOperator``'s XCom has (name, namespace, uid, ``state`` — also as ``phase`` —
conditions, times, and ``output``, the output replica's termination message) in the asset
event's ``extra["payload"]``.

Watchers of one cluster, namespace and API share one watch of its jobs in the triggerer (Airflow
3.3's shared streams: ``shared_stream_key``, ``open_shared_stream``, ``filter_shared_stream``);
each filters by its own selector and phases. Which jobs fire, once each across triggerer
restarts, is ``rules.jobevents``' rule; its memory lives in Airflow's asset state store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Any, Literal, TypedDict, cast

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_tfjob import arguments, errors, features
from airflow_tfjob.backends.kubernetes.backoff import Backoff
from airflow_tfjob.backends.kubernetes.follower import settings_key
from airflow_tfjob.backends.kubernetes.objects import slim
from airflow_tfjob.hooks.loops import PerLoop
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.model import checks, selector
from airflow_tfjob.model.errors import TFJobSpecError
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import jobevents
from airflow_tfjob.rules.follow import Follow, Limits
from airflow_tfjob.rules.report import EventPayload, TaskResult

log = logging.getLogger(__name__)
FINISHED = ("Succeeded", "Failed")
PERMANENT = (errors.TFJobForbidden, errors.TFJobCRDNotInstalled, errors.TFJobTLSError)
"""Errors no retry cures: the watcher fails, visibly, instead of retrying for ever."""
STREAM_SECONDS = 120
_OUTPUTS: PerLoop[dict[str, asyncio.Task[TaskResult]]] = PerLoop(dict)
"""uid -> the job's payload being read (once per event loop, whichever watcher asks first)."""
_MAX_OUTPUTS = 1024


class TFJobEventTrigger(BaseEventTrigger):
    """Fire once for each TFJob (or TrainJob: ``api``) in ``namespace`` matching
    ``label_selector`` that reaches one of ``phases``.

    :param namespace: The namespace to watch.
    :param label_selector: Only jobs whose labels match (Kubernetes selector syntax; empty: all).
    :param phases: ``("Succeeded",)`` (default), ``["Failed"]`` or both.
    :param kubernetes_conn_id: The ``kubernetes`` connection (read in the triggerer).
    :param config_file: A kubeconfig file on the triggerer's host, overriding the connection's.
    :param cluster_context: The kubeconfig context.
    :param in_cluster: Use the triggerer pod's service account.
    :param api: ``tfjob`` (default) or ``trainjob``: watch Kubeflow Trainer v2 TrainJobs (read as
        TFJobs). Given here, not read from the connection: the triggerer's loop reads no
        connection extras.
    """

    def __init__(
        self,
        *,
        namespace: str,
        label_selector: str = "",
        phases: Sequence[str] = ("Succeeded",),
        kubernetes_conn_id: str | None = "kubernetes_default",
        config_file: str | None = None,
        cluster_context: str | None = None,
        in_cluster: bool | None = None,
        api: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if api not in (None, "tfjob", "trainjob"):
            raise TFJobSpecError("api", api, "must be one of 'tfjob', 'trainjob' or None")
        self.api = api
        checks.dns1123_label(namespace, "namespace")
        self.requirements = selector.parse(label_selector)
        self.phases = list(arguments.phases(phases, "phases"))
        if not self.phases or not set(self.phases) <= set(FINISHED):
            raise TFJobSpecError("phases", phases, "must name Succeeded, Failed or both")
        arguments.connection(
            kubernetes_conn_id=kubernetes_conn_id,
            config_file=config_file,
            cluster_context=cluster_context,
            in_cluster=in_cluster,
            rendered=True,
        )
        self.namespace, self.label_selector = namespace, label_selector
        self.kubernetes_conn_id, self.config_file = kubernetes_conn_id, config_file
        self.cluster_context, self.in_cluster = cluster_context, in_cluster

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "namespace": self.namespace,
            "label_selector": self.label_selector,
            "phases": self.phases,
            "kubernetes_conn_id": self.kubernetes_conn_id,
            "config_file": self.config_file,
            "cluster_context": self.cluster_context,
            "in_cluster": self.in_cluster,
            "api": self.api,
        }

    def shared_stream_key(self) -> Hashable:
        """Watchers of one cluster (the same connection settings), namespace and API share a
        watch."""
        kwargs = self.serialize()[1]
        return ("airflow_tfjob.tfjobs", *(str(kwargs[k]) for k in _STREAM_FIELDS))

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """List the namespace's jobs (of ``api``), then watch them, for ever: each job as it is
        listed or changes, and after each listing a ``SYNCED`` event with the uids listed."""
        hook, namespace, backoff = _hook(kwargs), kwargs["namespace"], Backoff()
        while True:
            try:
                began = jobevents.now()
                items, version = await hook.list_jobs(namespace)
                for obj in items:
                    yield {"type": "LISTED", "object": slim("tfjobs", obj)}
                yield _synced(items, began)
                while True:
                    watch = hook.watch(
                        namespace, resource_version=version, timeout_seconds=STREAM_SECONDS
                    )
                    async with contextlib.aclosing(watch):  # closed even when we are
                        async for event in watch:
                            obj = event["object"]
                            version = obj["metadata"].get("resourceVersion") or version
                            if event["type"] in ("ADDED", "MODIFIED"):
                                yield {"type": event["type"], "object": slim("tfjobs", obj)}
                    backoff.reset()
            except errors.TFJobWatchExpired:
                continue  # list again at once
            except PERMANENT:
                raise
            except errors.TFJobError as exc:
                delay = backoff.next()
                log.warning(
                    "Watch of TFJobs in %s failed (%s); again in %.1f s", namespace, exc, delay
                )
                await asyncio.sleep(delay)

    async def filter_shared_stream(
        self, shared_stream: AsyncIterator[Any]
    ) -> AsyncIterator[TriggerEvent]:
        """An event for each job that is news (``rules.jobevents``), remembered before it fires.

        The watcher first lists the namespace itself: Airflow hands a subscriber only what the
        stream sends after it joined, and a watcher that joins after the stream's listing (a
        triggerer restart re-subscribes watchers one by one) would miss the jobs that finished
        while it was away."""
        caught_up = _own_listing_first(self.serialize()[1], shared_stream)
        async for event in self._filter(caught_up):
            yield event

    async def _filter(self, stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        fired = await self._recall()
        hook = None
        async for raw in stream:
            if raw["type"] == "SYNCED":
                if fired.forget_all_but(raw["uids"], raw.get("at")):
                    await self._remember(fired)
                continue
            obj = raw["object"]
            if not fired.due(obj, self.phases, self.requirements):
                continue
            hook = hook or _hook(self.serialize()[1])
            payload = await _payload(hook, obj)
            fired.record(obj)
            await self._remember(fired)
            self.log.info(
                "TFJob %s/%s %s: firing for the asset",
                payload["namespace"],
                payload["name"],
                payload["state"],
            )
            yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Without Airflow's shared streams (a test, an older triggerer): a watch of its own."""
        stream = type(self).open_shared_stream(self.serialize()[1])
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for event in self._filter(stream):  # its own stream lists first: caught up
                yield event

    def _memory_key(self) -> str:
        return "tfjob_events_" + settings_key(self.serialize()[1])[:16]

    async def _recall(self) -> jobevents.Fired:
        stores = asset_stores(_state_store(self))
        if not stores:
            features.say_once(
                self.log,
                "asset_state_store",
                "This Airflow (before 3.3) has no asset state store: a TFJob event watcher "
                "fires for the jobs that finish after it starts, and misses those that finish "
                "while no triggerer runs it",
            )
            return jobevents.Fired()
        fired = None
        for store in stores:  # the same memory in each (``_remember``): the first one found
            fired = fired or jobevents.Fired.from_dict(await store.aget(self._memory_key()))
        if fired is None:
            fired = jobevents.Fired()
            await self._remember(fired)
        self.log.info("Watching TFJobs in %s finished since %s", self.namespace, fired.since)
        return fired

    async def _remember(self, fired: jobevents.Fired) -> None:
        for store in asset_stores(_state_store(self)):
            await store.aset(self._memory_key(), fired.to_dict())


def _state_store(trigger: Any) -> Any:
    """The trigger's ``asset_state_store``: Airflow 3.3+ only (None before: no memory)."""
    return getattr(trigger, "asset_state_store", None)


def asset_stores(store: Any) -> list[Any]:
    """The state store of each asset this trigger feeds. Airflow runs one trigger for identical
    watchers of several assets (two DAGs watching the same namespace with the same arguments),
    and its ``asset_state_store`` then refuses plain ``aget``/``aset`` (they want exactly one
    asset) while the trigger knows no ``Asset`` to subscript it with: read its per-asset
    accessors (tests/triggers/test_event_trigger.py checks them against the installed Airflow)."""
    if store is None:
        return []
    by_name, by_uri = getattr(store, "_by_name", None), getattr(store, "_by_uri", None)
    if isinstance(by_name, dict) and isinstance(by_uri, dict):
        return [*by_name.values(), *by_uri.values()]
    return [store]


class Synced(TypedDict):
    """What the stream says after each listing of the namespace."""

    type: Literal["SYNCED"]
    uids: list[str]
    """The uids listed."""
    at: str
    """When the listing began."""


def _synced(items: list[KubeObject], began: str) -> Synced:
    """After a listing: the uids listed, and when the listing began (``Fired.forget_all_but``)."""
    return {"type": "SYNCED", "uids": [o["metadata"]["uid"] for o in items], "at": began}


async def _own_listing_first(
    kwargs: dict[str, Any], stream: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    """The namespace as this watcher lists it (retried like the stream's own listing), then the
    shared stream: the stream's events queue up for the subscriber meanwhile."""
    hook, namespace, backoff = _hook(kwargs), kwargs["namespace"], Backoff()
    while True:
        try:
            began = jobevents.now()
            items, _ = await hook.list_jobs(namespace)
            break
        except PERMANENT:
            raise
        except errors.TFJobError as exc:
            delay = backoff.next()
            log.warning("Listing TFJobs in %s failed (%s); again in %.1f s", namespace, exc, delay)
            await asyncio.sleep(delay)
    for obj in items:
        yield {"type": "LISTED", "object": slim("tfjobs", obj)}
    yield _synced(items, began)
    async for raw in stream:
        yield raw


_STREAM_FIELDS = (
    "kubernetes_conn_id", "config_file", "cluster_context", "in_cluster", "namespace", "api",
)  # fmt: skip


def _hook(kwargs: dict[str, Any]) -> AsyncTFJobHook:
    return AsyncTFJobHook(
        kwargs["kubernetes_conn_id"],
        config_file=kwargs["config_file"],
        cluster_context=kwargs["cluster_context"],
        in_cluster=kwargs["in_cluster"],
        api=kwargs.get("api"),  # absent from a trigger serialized before it existed
    )


async def _payload(hook: AsyncTFJobHook, obj: KubeObject) -> EventPayload:
    """The job's result as ``TFJobOperator``'s XCom has it, its pods read once per event loop."""
    uid = obj["metadata"]["uid"]
    outputs = _OUTPUTS.get()
    task = outputs.get(uid)
    if task is None:
        if len(outputs) >= _MAX_OUTPUTS:
            outputs.pop(next(iter(outputs)))
        task = outputs[uid] = asyncio.ensure_future(_read_result(hook, obj))
    result = dict(await asyncio.shield(task))
    return cast(EventPayload, {**result, "phase": result["state"]})  # a copy of a TaskResult


async def _read_result(hook: AsyncTFJobHook, obj: KubeObject) -> TaskResult:
    follow = Follow(obj, Limits())
    meta = obj["metadata"]
    try:
        pods, _ = await hook.list_pods(meta["name"], meta["namespace"])
    except errors.TFJobError as exc:  # pods cleaned up (cleanPodPolicy All): no output
        log.warning("Cannot read the pods of TFJob %s: %s", follow.where, exc)
        pods = []
    for pod in pods:
        follow.pod(pod)
    return follow.result()
