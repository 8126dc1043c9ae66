"""The shared watches against the real API server, through the fault proxy (which counts and
breaks requests): what is not ours is neither kept nor watched by the namespace's TFJob watch, a
job without our label is handed to a watch of its own, lists are read a page at a time (a
subscriber that comes mid-list is told what is already read; a 410 mid-list lists again), and a
watch that fails tells its subscribers so they read for themselves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest

from airflow_tfjob import TfJob, Worker
from airflow_tfjob.backends.kubernetes import objects, watches, watchsource
from airflow_tfjob.backends.kubernetes.inbox import Events
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.operators._build import label_pods
from airflow_tfjob.rules.status import JOB_NAME_LABEL
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.usefixtures("fault_proxy")


IDENTITY = naming.identity(naming.task_labels("dag", "task", "run", -1, 1))
"""The labels the operator puts on each replica's pod template (``label_pods``)."""


def _job(name: str, namespace: str, *, ours: bool, pods_labelled: bool) -> dict[str, Any]:
    manifest = TfJob(worker=Worker(replicas=1)).to_manifest(name, namespace, image="tf:2")
    manifest["metadata"]["labels"] = dict(naming.MANAGED_BY) if ours else {"team": "theirs"}
    # These tests write each job's pods themselves, exactly when they need them: the training
    # operator leaves alone a job another controller manages (as MultiKueue's jobs are).
    manifest["spec"]["runPolicy"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    if pods_labelled:
        label_pods(manifest, IDENTITY)
    return manifest


def _pod(job: str, index: int = 0, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{job}-worker-{index}",
            "labels": {**(labels or {}), JOB_NAME_LABEL: job},
        },
        # a scheduler nobody runs: the pod stays as written (no kubelet runs it)
        "spec": {"schedulerName": "none", "containers": [{"name": "tensorflow", "image": "tf:2"}]},
    }


class Ground:
    """Objects written straight to the API server (past the proxy), and the hook under test
    (through it)."""

    def __init__(self, kube_api: Any, proxy: FaultProxy, namespace: str) -> None:
        self.proxy, self.namespace = proxy, namespace
        self.core = kubernetes.client.CoreV1Api(kube_api)
        self.custom = kubernetes.client.CustomObjectsApi(kube_api)
        self.hook = AsyncTFJobHook(None, config_file=str(proxy.kubeconfig))

    def jobs(self, *names: str, ours: bool = True, pods_labelled: bool | None = None) -> None:
        """TFJobs as the provider makes them (``ours``: labelled, and so are their pods), or
        not; ``pods_labelled=False``: ours as a provider made them before it labelled pods."""
        labelled = ours if pods_labelled is None else pods_labelled
        for name in names:
            job = _job(name, self.namespace, ours=ours, pods_labelled=labelled)
            self.custom.create_namespaced_custom_object(
                "kubeflow.org", "v1", self.namespace, "tfjobs", job
            )

    def pods(self, job: str, *indices: int, labels: dict[str, str] | None = None) -> None:
        """Pods of ``job``, as its controller makes them (with its template's ``labels``)."""
        for index in indices:
            self.core.create_namespaced_pod(self.namespace, _pod(job, index, labels))

    def subscribe(self, kind: str, name: str, **kwargs: Any) -> watches.Subscription:
        return watches.subscribe("k", self.hook, self.namespace, kind, name, **kwargs)

    def lists(self, kind: str) -> list[str]:
        """The queries of the list requests (not watches) made for ``kind`` so far."""
        return [
            q
            for m, p, q in self.proxy.history
            if m == "GET" and p.endswith(f"/{kind}") and "watch=" not in q
        ]


@pytest.fixture
def ground(kube_api: Any, fault_proxy: FaultProxy, namespace: str) -> Ground:
    return Ground(kube_api, fault_proxy, namespace)


def _names(kept: dict[str, Any] | None) -> set[str]:
    """The pod names among a store's objects of one job (kept by uid, as compact JSON)."""
    return {json.loads(obj)["metadata"]["name"] for obj in (kept or {}).values()}


async def _until(probe: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _events(queue: Events, seconds: float = 0.3) -> list[dict[str, Any]]:
    """What comes into ``queue`` within ``seconds`` of quiet."""
    got = []
    while (event := await queue.get(seconds)) is not None:
        got.append(event)
    return got


def test_slim_keeps_what_the_follower_reads() -> None:
    job = {
        "metadata": {
            "name": "a",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "1",
            "labels": {"x": "y"},
            "annotations": {"big": "x" * 100},
            "managedFields": [{"manager": "kubectl"}],
            "creationTimestamp": "2026-12-05T00:00:00Z",
        },
        "spec": {
            "runPolicy": {"cleanPodPolicy": "None"},
            "tfReplicaSpecs": {"Worker": {"replicas": 2, "template": {"spec": {"big": 1}}}},
        },
        "status": {"conditions": [{"type": "Running", "status": "True"}]},
    }
    slim = objects.slim("tfjobs", job)
    assert set(slim["metadata"]) == {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "labels",
        "creationTimestamp",
    }
    assert slim["spec"] == {
        "runPolicy": {"cleanPodPolicy": "None"},
        "tfReplicaSpecs": {"Worker": {"replicas": 2}},
    }
    assert slim["status"] == job["status"]
    assert objects.pods_kind(slim) == objects.PODS
    job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["metadata"] = {"labels": IDENTITY}
    job["spec"]["tfReplicaSpecs"]["Chief"] = {"template": {"metadata": {"labels": IDENTITY}}}
    slim = objects.slim("tfjobs", job)
    assert slim["spec"]["tfReplicaSpecs"]["Worker"] == {
        "replicas": 2,
        "template": {"metadata": {"labels": IDENTITY}},  # which pod watch sees its pods
    }
    assert objects.pods_kind(slim) == objects.OUR_PODS
    del job["spec"]["tfReplicaSpecs"]["Chief"]["template"]  # one replica's pods lack them
    assert objects.pods_kind(objects.slim("tfjobs", job)) == objects.PODS
    pod = {
        **_pod("a"),
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "tensorflow", "state": {"running": {}}}],
        },
    }
    slim = objects.slim("pods", pod)
    assert "spec" not in slim
    assert slim["status"] == {
        "phase": "Running",
        "containerStatuses": [{"name": "tensorflow", "state": {"running": {}}}],
    }


def test_the_pods_of_our_jobs_are_selected_by_the_server_and_others_never_seen(
    ground: Ground,
) -> None:
    ground.jobs("ours-1", "ours-2")
    ground.jobs(*(f"crowd-{i}" for i in range(5)), ours=False)
    ground.pods("ours-1", 0, labels=IDENTITY)
    ground.pods("ours-2", 0, labels=IDENTITY)
    for i in range(5):
        ground.pods(f"crowd-{i}", 0, 1)

    async def run() -> None:
        inbox = Events()
        async with ground.subscribe("tfjobs", "ours-1", queue=inbox) as jobs:
            await _until(lambda: jobs.healthy)
            (listed,) = await _events(inbox)
            assert objects.pods_kind(listed["object"]) == objects.OUR_PODS
            async with ground.subscribe(objects.OUR_PODS, "ours-1", queue=inbox) as pods:
                assert jobs.watch is not None and pods.watch is not None
                await _until(lambda: pods.healthy)
                assert set(jobs.watch.store) == {"ours-1", "ours-2"}  # the server filtered
                assert set(pods.watch.store) == {"ours-1", "ours-2"}  # kept for ours-2's follower
                seen = [(e["kind"], e["type"]) for e in await _events(inbox)]
                assert seen == [(objects.OUR_PODS, "LISTED")]
                await asyncio.to_thread(ground.pods, "crowd-1", 9)
                await asyncio.to_thread(ground.pods, "ours-2", 1, labels=IDENTITY)
                await _until(lambda: "ours-2-worker-1" in _names(pods.watch.store.get("ours-2")))
                assert "crowd-1" not in pods.watch.store and pods.watch.dropped == 0
                assert await _events(inbox) == []  # neither is ours-1's
        assert watches.active() == {}

    asyncio.run(run())
    (query,) = ground.lists("tfjobs")
    assert "labelSelector=app.kubernetes.io/managed-by%3Dairflow-tfjob" in query
    (query,) = ground.lists("pods")
    assert "airflow-tfjob/dag-id" in query  # the crowd's 10 pods were never sent


def test_pods_without_our_labels_come_from_a_watch_of_every_tfjobs_pods_that_keeps_ours_only(
    ground: Ground,
) -> None:
    ground.jobs("ours-1", pods_labelled=False)  # made by a provider before it labelled pods
    ground.jobs(*(f"crowd-{i}" for i in range(5)), ours=False)
    ground.pods("ours-1", 0)
    for i in range(5):
        ground.pods(f"crowd-{i}", 0, 1)

    async def run() -> None:
        async with ground.subscribe("tfjobs", "ours-1") as jobs:
            await _until(lambda: jobs.healthy)
            (listed,) = await _events(jobs.queue)
            assert objects.pods_kind(listed["object"]) == objects.PODS
            async with ground.subscribe(objects.PODS, "ours-1") as pods:
                assert pods.watch is not None
                await _until(lambda: pods.healthy)
                assert set(pods.watch.store) == {"ours-1"}  # the crowd's: neither ours nor followed
                assert pods.watch.dropped == 10
                (pod,) = await _events(pods.queue)
                assert pod["object"]["metadata"]["name"] == "ours-1-worker-0"
                assert "spec" not in pod["object"]  # slim, as stored
                await asyncio.to_thread(ground.pods, "crowd-1", 9)
                await _until(lambda: pods.watch is not None and pods.watch.dropped == 11)
        assert watches.active() == {}

    asyncio.run(run())


def test_a_job_without_our_label_is_handed_to_a_watch_of_its_own(ground: Ground) -> None:
    ground.jobs("ours-1")
    ground.jobs("theirs", ours=False)

    async def run() -> None:
        async with (
            ground.subscribe("tfjobs", "ours-1") as ours,
            ground.subscribe("tfjobs", "theirs") as theirs,
        ):
            await _until(lambda: theirs.healthy and theirs.watch.only == "theirs")
            assert ours.watch is not None and ours.watch.only is None
            (listed,) = await _events(theirs.queue)
            assert (listed["type"], listed["object"]["metadata"]["name"]) == ("LISTED", "theirs")
            await ground.hook.patch(
                "theirs", ground.namespace, {"metadata": {"labels": {"x": "1"}}}
            )
            (changed,) = await _events(theirs.queue, 5.0)
            assert changed["type"] == "MODIFIED"
            assert len(watches.active()) == 2  # ours, and the one job's
        assert watches.active() == {}

    asyncio.run(run())
    watched = [q for m, p, q in ground.proxy.history if "watch=" in q and p.endswith("/tfjobs")]
    assert any("fieldSelector=metadata.name" in q and "theirs" in q for q in watched)


def test_a_job_gone_while_unwatched_is_told_absent_by_its_own_watch(ground: Ground) -> None:
    async def run() -> None:
        async with ground.subscribe("tfjobs", "gone") as sub:
            await _until(lambda: sub.watch is not None and sub.watch.only == "gone")
            (absent,) = await _events(sub.queue, 5.0)
            assert absent["type"] == "ABSENT"
        await asyncio.sleep(0.05)
        assert watches.active() == {}

    asyncio.run(run())


def test_a_subscriber_whose_job_never_shows_in_a_watch_in_sync_is_handed_off(
    ground: Ground, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watches, "HANDOFF_SECONDS", 0.01)
    ground.jobs("ours-1")
    ground.jobs("theirs", ours=False)

    async def run() -> None:
        async with ground.subscribe("tfjobs", "ours-1") as ours:
            await _until(lambda: ours.healthy)
            async with ground.subscribe("tfjobs", "theirs") as theirs:
                assert theirs.watch is ours.watch
                await _until(lambda: theirs.watch is not None and theirs.watch.only == "theirs")
                (listed,) = await _events(theirs.queue, 5.0)
                assert listed["object"]["metadata"]["name"] == "theirs"
            assert set(watches.active()) == {("k", ground.namespace, "tfjobs")}
        assert watches.active() == {}

    asyncio.run(run())


def test_a_list_is_read_a_page_at_a_time_and_a_subscriber_mid_list_is_told_at_once(
    ground: Ground, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watchsource, "LIST_PAGE", 2)
    ground.jobs("a", "b", "c", "d", "e")
    ground.proxy.delay("/tfjobs$", seconds=0.5, watch=False)  # each page takes its time

    async def run() -> None:
        async with ground.subscribe("tfjobs", "a") as first:
            watch = first.watch
            assert watch is not None
            await _until(lambda: watch.filling and "a" in watch.store)  # page 1 is read
            async with ground.subscribe("tfjobs", "a") as late:
                assert [e["type"] for e in await _events(late.queue, 0.0)] == ["LISTED"]
                await _until(lambda: watch.synced)
                assert set(watch.store) == set("abcde")
                assert await _events(late.queue) == []  # told once
            assert [e["type"] for e in await _events(first.queue)] == ["LISTED"]

    asyncio.run(run())
    pages = ground.lists("tfjobs")
    assert len(pages) == 3 and all("limit=2" in q for q in pages)
    assert sum("continue=" in q for q in pages) == 2


def test_a_410_mid_list_lists_again_from_the_start(
    ground: Ground, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watchsource, "LIST_PAGE", 2)
    ground.jobs("a", "b", "c", "d", "e")
    delay = ground.proxy.delay("/tfjobs$", seconds=0.3, watch=False)

    async def run() -> None:
        async with ground.subscribe("tfjobs", "e") as sub:
            watch = sub.watch
            assert watch is not None
            await _until(lambda: watch.filling and "a" in watch.store)
            ground.proxy.rules.remove(delay)
            ground.proxy.fail("/tfjobs$", status=410, watch=False)  # the continue token expired
            await _until(lambda: watch.synced)
            assert set(watch.store) == set("abcde")
            assert [e["object"]["metadata"]["name"] for e in await _events(sub.queue)] == ["e"]

    asyncio.run(run())
    continued = ["continue=" in q for q in ground.lists("tfjobs")]
    # page 1, then a later page refused (410), then the whole list again from its first page
    assert continued[:2] == [False, True] and continued[-3:] == [False, True, True]
    assert len(continued) in (5, 6)


def test_a_failing_watch_tells_its_subscribers_and_tells_them_again_once_listed(
    ground: Ground, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watchsource, "STREAM_SECONDS", 1)  # streams end (and reopen) every second
    ground.jobs("ours-1")

    async def run() -> None:
        async with ground.subscribe("tfjobs", "ours-1") as sub:
            await _until(lambda: sub.healthy)
            assert [e["type"] for e in await _events(sub.queue)] == ["LISTED"]
            broken = ground.proxy.fail("/tfjobs$", status=500, times=None, watch=True)
            event = await sub.queue.get(15.0)  # the stream ends; the next one is refused
            assert event is not None and event["type"] == "STALE"
            assert not sub.healthy  # told as it stopped being current
            ground.proxy.rules.remove(broken)
            await _until(lambda: sub.healthy, timeout=60)
            assert "LISTED" in [e["type"] for e in await _events(sub.queue)]

    asyncio.run(run())


def test_a_subscriber_alone_watches_its_own_job_and_pods_and_lists_no_namespace(
    ground: Ground,
) -> None:
    ground.jobs("mine", "other")
    ground.pods("mine", 0, labels=IDENTITY)
    ground.pods("other", 0, labels=IDENTITY)

    async def run() -> None:
        inbox = Events()
        async with (
            ground.subscribe("tfjobs", "mine", queue=inbox, alone=True) as jobs,
            ground.subscribe(objects.PODS, "mine", queue=inbox, alone=True) as pods,
        ):
            assert jobs.watch is not None and pods.watch is not None
            await _until(lambda: jobs.healthy and pods.healthy)
            assert set(jobs.watch.store) == {"mine"} and set(pods.watch.store) == {"mine"}
            names = sorted(e["object"]["metadata"]["name"] for e in await _events(inbox))
            assert names == ["mine", "mine-worker-0"]
            assert len(watches.active()) == 2
        assert watches.active() == {}

    asyncio.run(run())
    assert ground.lists("tfjobs") == []  # the job was read by its name
    (query,) = ground.lists("pods")
    assert "job-name%3Dmine" in query
    watched = [q for m, p, q in ground.proxy.history if "watch=" in q]
    assert len(watched) == 2 and all("mine" in q for q in watched)


def test_a_watch_stopped_by_a_bug_tells_its_subscribers_to_read_for_themselves(
    ground: Ground, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watchsource, "STREAM_SECONDS", 1)  # streams end (and reopen) every second
    ground.jobs("ours-1")

    async def run() -> None:
        async with ground.subscribe("tfjobs", "ours-1") as sub:
            await _until(lambda: sub.healthy)
            assert [e["type"] for e in await _events(sub.queue)] == ["LISTED"]

            async def broken(self: watches.SharedWatch, version: str) -> str:
                raise RuntimeError("a bug in the stream")

            monkeypatch.setattr(watches.SharedWatch, "_stream", broken)
            event = await sub.queue.get(15.0)  # the next stream runs the bug
            assert event is not None and event["type"] == "STALE"
            assert not sub.healthy and sub.watch is not None and sub.watch.task is not None
            assert isinstance(sub.watch.task.exception(), RuntimeError)

    asyncio.run(run())
