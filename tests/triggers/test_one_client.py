"""One HTTP client per cluster and event loop: every request, watch (and its reconnects) and log
stream of the triggers following jobs goes through it, not a client per call; it is closed with
its last user."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.backends.kubernetes import watchsource
from airflow_tfjob.hooks import _clients
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.triggers.tfjob import TFJobTrigger
from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import Fate, Script
from tests.triggers.loglines import capture


def test_jobs_followed_through_watch_reconnects_share_one_client(
    replicas: Script,
    namespace: str,
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[ApiClient] = []
    real_init = ApiClient.__init__

    def counted(self: ApiClient, *args: Any, **kwargs: Any) -> None:  # a spy: the real client
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ApiClient, "__init__", counted)
    monkeypatch.setattr(watchsource, "STREAM_SECONDS", 1)  # the watches reconnect every second
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    triggers = []
    log, lines = capture("tests.oneclient")
    for job in ("one", "two"):
        replicas.set_fate(job, "Chief", 0, Fate(duration=4.0, logs=[f"{job} says"], message="{}"))
        replicas.set_fate(job, "Worker", 0, Fate(duration=4.0, logs=[f"{job} works"]))
        manifest = TfJob(chief=Chief(), worker=Worker()).to_manifest(job, namespace, image="tf:2")
        manifest["metadata"].setdefault("labels", {}).update(naming.MANAGED_BY)
        obj = hook.create(manifest)
        trigger = TFJobTrigger(
            name=job, namespace=namespace, uid=obj["metadata"]["uid"], get_logs=True,
            poll_interval=1, settings=hook.trigger_settings(),
        )  # fmt: skip
        trigger._log = log  # LoggingMixin's logger: the task log's lines, read back here
        triggers.append(trigger)

    async def run() -> list[Any]:
        async def first(trigger: TFJobTrigger) -> Any:
            async for event in trigger.run():
                return event.payload

        return list(await asyncio.gather(*(first(t) for t in triggers)))

    events = asyncio.run(run())
    assert [e["kind"] for e in events] == ["finished", "finished"], events
    watched = fault_proxy.requests(rf"/namespaces/{namespace}/(pods|tfjobs)$", watch=True)
    assert watched >= 4, watched  # reconnected (two watches, 4 s, a second each)
    assert len(built) == 1, f"{len(built)} API clients for two jobs' requests, watches and logs"
    assert _clients.open_clients() == 0  # closed with its last user
    for job in ("one", "two"):
        assert f"[chief-0] {job} says" in lines.lines and f"[worker-0] {job} works" in lines.lines
