"""The shared watches' store and routing, against a scripted hook (no API server): what is not
ours is neither kept nor watched by the namespace's TFJob watch, and a job without our label is
handed to a watch of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import watches
from airflow_tfjob.spec import naming
from airflow_tfjob.spec.status import JOB_NAME_LABEL

NS = "ns"


def _job(name: str, *, ours: bool = True) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "labels": dict(naming.MANAGED_BY) if ours else {"team": "theirs"},
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


def _pod(job: str, index: int = 0) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{job}-worker-{index}",
            "namespace": NS,
            "labels": {JOB_NAME_LABEL: job},
            "managedFields": [{"manager": "kubelet"}],
        },
        "spec": {"containers": [{"name": "tensorflow"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "tensorflow", "state": {"running": {}}}],
        },
    }


class Hook:
    """Lists what it holds (honouring our label selector), reads one job, and streams the events
    put into ``events`` (per kind) until the test ends."""

    def __init__(self, jobs: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.jobs, self.pods = jobs, pods
        self.events: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.calls: list[tuple[str, str]] = []

    async def list_jobs(self, namespace: str, *, label_selector: str = "") -> Any:
        self.calls.append(("list_jobs", label_selector))
        key, _, value = label_selector.partition("=")
        chosen = [j for j in self.jobs if not key or j["metadata"]["labels"].get(key) == value]
        return chosen, "10"

    async def list_pods(self, name: str | None, namespace: str) -> Any:
        self.calls.append(("list_pods", name or ""))
        return list(self.pods), "10"

    async def get(self, name: str, namespace: str) -> dict[str, Any]:
        self.calls.append(("get", name))
        for job in self.jobs:
            if job["metadata"]["name"] == name:
                return job
        raise errors.TFJobNotFound(f"{name} not found", status=404)

    async def _events(self, kind: str) -> AsyncIterator[dict[str, Any]]:
        queue = self.events.setdefault(kind, asyncio.Queue())
        while True:
            yield await queue.get()

    def watch(self, namespace: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("watch", kwargs.get("name") or kwargs.get("label_selector") or ""))
        return self._events(f"tfjobs/{kwargs.get('name') or ''}")

    def watch_pods(self, name: str | None, namespace: str, **kwargs: Any) -> Any:
        self.calls.append(("watch_pods", ""))
        return self._events("pods")


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_slim_keeps_what_the_follower_reads() -> None:
    job = watches.slim("tfjobs", _job("a"))
    assert set(job["metadata"]) == {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "labels",
        "creationTimestamp",
    }
    assert job["spec"] == {
        "runPolicy": {"cleanPodPolicy": "None"},
        "tfReplicaSpecs": {"Worker": {"replicas": 2}},
    }
    assert job["status"] == _job("a")["status"]
    pod = watches.slim("pods", _pod("a"))
    assert "spec" not in pod and "managedFields" not in pod["metadata"]
    assert pod["status"] == {
        "phase": "Running",
        "containerStatuses": [{"name": "tensorflow", "state": {"running": {}}}],
    }


def test_the_stores_keep_only_what_is_ours_or_followed() -> None:
    crowd = [_job(f"crowd-{i}", ours=False) for i in range(5)]
    hook = Hook([_job("ours-1"), _job("ours-2"), *crowd], [_pod("ours-1"), _pod("ours-2")])
    hook.pods += [_pod(f"crowd-{i}", k) for i in range(5) for k in range(4)]

    async def run() -> None:
        async with (
            watches.subscribe("k", hook, NS, "tfjobs", "ours-1") as jobs,  # type: ignore[arg-type]
            watches.subscribe("k", hook, NS, "pods", "ours-1") as pods,  # type: ignore[arg-type]
        ):
            await _settle()
            assert ("list_jobs", naming.selector()) in hook.calls  # the server filters
            assert set(jobs.watch.store) == {"ours-1", "ours-2"}
            # ours-2 has no follower yet, but is ours: its pods are kept for when it has one
            assert set(pods.watch.store) <= {"ours-1", "ours-2"}
            assert "ours-1" in pods.watch.store
            hook.events["pods"].put_nowait({"type": "MODIFIED", "object": _pod("crowd-1", 9)})
            hook.events["pods"].put_nowait({"type": "MODIFIED", "object": _pod("ours-2", 1)})
            await _settle()
            assert "crowd-1" not in pods.watch.store and pods.watch.dropped >= 1
            assert set(pods.watch.store["ours-2"]) >= {"ours-2-worker-1"}
            event = jobs.queue.get_nowait()
            assert event["object"]["metadata"]["name"] == "ours-1"
            assert "managedFields" not in event["object"]["metadata"]  # slim, as stored
        assert watches.active() == {}

    asyncio.run(run())


def test_a_job_without_our_label_is_handed_to_a_watch_of_its_own() -> None:
    hook = Hook([_job("ours-1"), _job("theirs", ours=False)], [])

    async def run() -> None:
        async with (
            watches.subscribe("k", hook, NS, "tfjobs", "ours-1") as ours,  # type: ignore[arg-type]
            watches.subscribe("k", hook, NS, "tfjobs", "theirs") as theirs,  # type: ignore[arg-type]
        ):
            await _settle()
            assert theirs.watch.only == "theirs" and ours.watch.only is None
            got = theirs.queue.get_nowait()
            assert got["type"] == "LISTED" and got["object"]["metadata"]["name"] == "theirs"
            assert ("watch", "theirs") in hook.calls  # a field selector on its name
            hook.events["tfjobs/theirs"].put_nowait(
                {"type": "MODIFIED", "object": _job("theirs", ours=False)}
            )
            await _settle()
            assert theirs.queue.get_nowait()["type"] == "MODIFIED"
            assert len(watches.active()) == 2  # ours, and the one job's
        assert watches.active() == {}

    asyncio.run(run())


def test_a_job_gone_while_unwatched_is_told_absent_by_its_own_watch() -> None:
    hook = Hook([], [])

    async def run() -> None:
        async with watches.subscribe("k", hook, NS, "tfjobs", "gone") as sub:  # type: ignore[arg-type]
            await _settle()
            assert sub.watch.only == "gone"
            assert sub.queue.get_nowait()["type"] == "ABSENT"
        await _settle()
        assert watches.active() == {}

    asyncio.run(run())


def test_a_subscriber_to_a_watch_in_sync_is_handed_off_when_its_job_never_shows(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(watches, "HANDOFF_SECONDS", 0.01)
    hook = Hook([_job("ours-1"), _job("theirs", ours=False)], [])

    async def run() -> None:
        async with watches.subscribe("k", hook, NS, "tfjobs", "ours-1") as ours:  # type: ignore[arg-type]
            await _settle()
            assert ours.watch.synced
            async with watches.subscribe("k", hook, NS, "tfjobs", "theirs") as theirs:  # type: ignore[arg-type]
                assert theirs.watch is ours.watch
                await asyncio.sleep(0.05)
                await _settle()
                assert theirs.watch.only == "theirs"
                assert theirs.queue.get_nowait()["object"]["metadata"]["name"] == "theirs"
            assert set(watches.active()) == {("k", NS, "tfjobs")}
        assert watches.active() == {}

    asyncio.run(run())
