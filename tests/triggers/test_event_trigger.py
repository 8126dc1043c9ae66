"""TFJobEventTrigger on its own, in one event loop, against the real API server and the replicas:
which finished jobs fire (once each), what an event carries, and a restart that resumes from the
watcher's memory. The asset state store here is a dict with Airflow's async accessor methods; the
live tier runs the real one (tests/live/test_events.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.model import TFJobSpecError
from airflow_tfjob.rules import jobevents
from airflow_tfjob.triggers.events import TFJobEventTrigger
from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually

try:
    from airflow.triggers.shared_stream import SharedStreamManager
except ImportError:  # Airflow < 3.3: a trigger watches alone (run())
    SharedStreamManager = None
try:
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors
except ImportError:  # Airflow < 3.3: no memory across triggerer restarts
    AssetStateStoreAccessors = None

needs_shared_streams = pytest.mark.skipif(
    SharedStreamManager is None, reason="Airflow's shared trigger streams are new in 3.3"
)


class Store:
    """An asset state store's accessor, kept in a dict (survives the trigger, as the DB does)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def _create(hook: TFJobHook, name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    manifest = TfJob(chief=Chief(), worker=Worker()).to_manifest(name, namespace, image="tf:2")
    manifest["metadata"]["labels"] = labels
    return hook.create(manifest)


def _phase(hook: TFJobHook, name: str, namespace: str) -> str:
    conditions = (hook.get(name, namespace).get("status") or {}).get("conditions") or []
    true = [c["type"] for c in conditions if c["status"] == "True"]
    return true[-1] if true else ""


class Watching:
    """A trigger's events, collected by a task of the test's event loop."""

    def __init__(self, trigger: TFJobEventTrigger) -> None:
        self.trigger, self.events = trigger, []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watching:
        async def collect() -> None:
            async for event in self.trigger.run():
                self.events.append(dict(event.payload))

        self.task = asyncio.create_task(collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _until(probe: Any, timeout: float = 60.0) -> None:
    await asyncio.to_thread(eventually, probe, timeout=timeout)


def _watcher(kubeconfig: Path, namespace: str, store: Store, **kwargs: Any) -> TFJobEventTrigger:
    trigger = TFJobEventTrigger(
        namespace=namespace, kubernetes_conn_id=None, config_file=str(kubeconfig), **kwargs
    )
    trigger.asset_state_store = store  # type: ignore[assignment]
    return trigger


def test_a_job_that_succeeds_fires_once_with_its_output_and_others_do_not(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    replicas.set_fate("before", "Chief", 0, Fate(duration=0.2, message='{"auc": 0.1}'))
    _create(hook, "before", namespace, {"team": "vision"})  # finished before the watcher ran
    eventually(lambda: _phase(hook, "before", namespace) == "Succeeded", timeout=60)
    time.sleep(1.1)  # times have whole seconds: one finished in the watcher's first one is news
    replicas.set_fate("good", "Chief", 0, Fate(duration=1.0, message='{"auc": 0.93}'))
    replicas.set_fate("bad", "Chief", 0, Fate(duration=1.0, exit_code=2, message="nan"))
    replicas.set_fate("other", "Chief", 0, Fate(duration=1.0, message='{"auc": 0.5}'))
    store = Store()

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watcher(kubeconfig, namespace, store, label_selector="team in (vision,nlp)")
        async with Watching(trigger) as watching:
            await _until(lambda: store.values)  # the watcher has its memory: it is watching
            good = await asyncio.to_thread(_create, hook, "good", namespace, {"team": "vision"})
            await asyncio.to_thread(_create, hook, "bad", namespace, {"team": "vision"})
            await asyncio.to_thread(_create, hook, "other", namespace, {"team": "speech"})
            for name in ("good", "bad", "other"):
                await _until(lambda n=name: _phase(hook, n, namespace) in ("Succeeded", "Failed"))
            await _until(lambda: watching.events)
            await asyncio.sleep(3)  # nothing else comes
            assert watching.events[0]["uid"] == good["metadata"]["uid"]
            return watching.events

    events = asyncio.run(scenario())
    assert [e["name"] for e in events] == ["good"]
    event = events[0]
    assert (event["namespace"], event["state"], event["phase"]) == (
        namespace,
        "Succeeded",
        "Succeeded",
    )
    assert event["output"] == {"auc": 0.93} and event["completion_time"]


def test_a_trainjob_that_succeeds_fires_once_with_its_output(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    """On Kubeflow Trainer v2 (``api="trainjob"``): the same event, read from a TrainJob."""
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig), api="trainjob")
    replicas.set_fate("tj-good", "Chief", 0, Fate(duration=1.0, message='{"auc": 0.9}'))
    replicas.set_fate("tj-bad", "Chief", 0, Fate(duration=1.0, exit_code=2, message="nan"))
    store = Store()

    async def scenario() -> list[dict[str, Any]]:
        trigger = _watcher(kubeconfig, namespace, store, api="trainjob")
        async with Watching(trigger) as watching:
            await _until(lambda: store.values)
            good = await asyncio.to_thread(_create, hook, "tj-good", namespace, {"team": "v"})
            await asyncio.to_thread(_create, hook, "tj-bad", namespace, {"team": "v"})
            for name in ("tj-good", "tj-bad"):
                await _until(lambda n=name: _phase(hook, n, namespace) in ("Succeeded", "Failed"))
            await _until(lambda: watching.events)
            await asyncio.sleep(3)  # nothing else comes
            assert watching.events[0]["uid"] == good["metadata"]["uid"]
            return watching.events

    events = asyncio.run(scenario())
    assert [(e["name"], e["state"], e["output"]) for e in events] == [
        ("tj-good", "Succeeded", {"auc": 0.9})
    ]


def test_a_restart_fires_for_what_finished_meanwhile_and_never_twice(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    replicas.set_default_fate("Chief", Fate(duration=0.5, message='"done"'))
    store = Store()

    async def scenario() -> tuple[list[str], list[str]]:
        async with Watching(
            _watcher(kubeconfig, namespace, store, phases=["Failed", "Succeeded"])
        ) as first:
            await _until(lambda: store.values)
            await asyncio.to_thread(_create, hook, "one", namespace, {})
            await _until(lambda: first.events)
        # the triggerer is down: a job finishes meanwhile
        await asyncio.to_thread(_create, hook, "two", namespace, {})
        await _until(lambda: _phase(hook, "two", namespace) == "Succeeded")
        async with Watching(
            _watcher(kubeconfig, namespace, store, phases=["Failed", "Succeeded"])
        ) as second:
            await _until(lambda: second.events)
            await asyncio.sleep(3)  # "one" is listed again, and must not fire again
        return [e["name"] for e in first.events], [e["name"] for e in second.events]

    assert asyncio.run(scenario()) == (["one"], ["two"])


class Subscribed:
    """A watcher on a stream of Airflow's ``SharedStreamManager`` (as the triggerer runs it:
    the stream broadcast to the subscribers present), its events collected."""

    def __init__(self, manager: SharedStreamManager, trigger_id: int, trigger: Any) -> None:
        self.manager, self.trigger_id, self.trigger = manager, trigger_id, trigger
        self.events: list[dict[str, Any]] = []
        stream = manager.subscribe(
            trigger_id=trigger_id, trigger=trigger, key=trigger.shared_stream_key()
        )

        async def collect() -> None:
            async for event in trigger.filter_shared_stream(stream):
                self.events.append(dict(event.payload))

        self.task = asyncio.create_task(collect())

    @property
    def names(self) -> list[str]:
        return [e["name"] for e in self.events]

    async def leave(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.manager.unsubscribe(self.trigger_id, self.trigger.shared_stream_key())


@needs_shared_streams
def test_a_watcher_joining_a_shared_stream_late_catches_up_and_fires_once(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    replicas.set_default_fate("Chief", Fate(duration=0.5, message='"done"'))
    store = Store()
    early = _watcher(kubeconfig, namespace, store, phases=["Succeeded", "Failed"])
    late = _watcher(kubeconfig, namespace, store)  # same stream key, a memory of its own
    assert early.shared_stream_key() == late.shared_stream_key()
    for trigger in (early, late):  # both watched before the triggerer went down
        store.values[trigger._memory_key()] = jobevents.Fired(since=jobevents.now()).to_dict()
    time.sleep(1.1)  # times have whole seconds

    async def scenario() -> tuple[list[str], list[str]]:
        await asyncio.to_thread(_create, hook, "one", namespace, {})  # while nobody watches
        await _until(lambda: _phase(hook, "one", namespace) == "Succeeded")
        manager = SharedStreamManager()  # the triggerer is back: the early watcher first
        first = Subscribed(manager, 1, early)
        await _until(lambda: first.names == ["one"])  # the stream's listing has gone by
        await asyncio.to_thread(_create, hook, "two", namespace, {})  # finishes as it joins
        second = Subscribed(manager, 2, late)
        await _until(lambda: "one" in second.names, timeout=30)
        await asyncio.to_thread(_create, hook, "three", namespace, {})  # both are subscribed
        for watcher in (first, second):
            await _until(lambda w=watcher: {"two", "three"} <= set(w.names))
        await asyncio.sleep(3)  # nothing comes twice
        for watcher in (first, second):
            await watcher.leave()
        await manager.stop_all()
        return first.names, second.names

    first, second = asyncio.run(scenario())
    assert sorted(first) == sorted(second) == ["one", "three", "two"], (first, second)


def test_watchers_of_one_namespace_share_a_stream_key_and_others_do_not(
    namespace: str, kubeconfig: Path
) -> None:
    store = Store()
    a = _watcher(kubeconfig, namespace, store, label_selector="team=a")
    b = _watcher(kubeconfig, namespace, store, label_selector="team=b", phases=["Failed"])
    c = _watcher(kubeconfig, "elsewhere", store)
    assert a.shared_stream_key() == b.shared_stream_key() != c.shared_stream_key()
    assert a._memory_key() != b._memory_key()  # each remembers its own


def test_the_shared_stream_relists_after_a_410_and_a_cut_stream(
    replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    kubeconfig = fault_proxy.kubeconfig
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    jobs = rf"/namespaces/{namespace}/tfjobs$"
    replicas.set_default_fate("Chief", Fate(duration=0.5, message="1"))
    store = Store()

    async def scenario() -> list[str]:
        cut = fault_proxy.cut_watch(jobs, after_seconds=0.5, times=1)  # the first stream
        expired = fault_proxy.gone(jobs, times=1)  # the second
        async with Watching(_watcher(kubeconfig, namespace, store)) as watching:
            await _until(lambda: cut.hits == 1 and expired.hits == 1)
            await _until(lambda: fault_proxy.open_streams(jobs) == 1)  # watching again
            await asyncio.to_thread(_create, hook, "after-faults", namespace, {})
            await _until(lambda: watching.events)
            return [e["name"] for e in watching.events]

    assert asyncio.run(scenario()) == ["after-faults"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label_selector": "team in vision"}, "label_selector: got 'team in vision'; cannot read"),
        ({"label_selector": "te am=x"}, "label_selector"),
        ({"phases": ["Running"]}, "phases: got ['Running']; must name Succeeded, Failed or both"),
        ({"phases": "Succeeded"}, "phases: got 'Succeeded'; must be a list of phases"),
        ({"namespace": "ML"}, "namespace: got 'ML'"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TFJobSpecError) as caught:
        TFJobEventTrigger(**{"namespace": "ml", **kwargs})
    assert message in str(caught.value)


@pytest.mark.skipif(AssetStateStoreAccessors is None, reason="asset state stores are new in 3.3")
def test_a_trigger_feeding_several_assets_keeps_its_memory_in_each_of_their_stores() -> None:
    """Airflow gives identical watchers of two assets one trigger, whose ``asset_state_store``
    (Airflow's own class, as the triggerer builds it) refuses plain ``aget``; the watcher's
    memory goes to each asset's store instead."""
    from airflow.sdk import Asset

    from airflow_tfjob.triggers.events import asset_stores

    vision, every = Asset("vision-models"), Asset("all-models")
    two = AssetStateStoreAccessors(inlets=[vision, every])
    with pytest.raises(ValueError, match="2 concrete inlets and outlets"):
        asyncio.run(two.aget("key"))
    assert asset_stores(two) == [two[vision], two[every]]
    one = AssetStateStoreAccessors(inlets=[vision])
    assert asset_stores(one) == [one[vision]] and asset_stores(None) == []
