"""Live log streams capped per process (``[tfjob] max_log_streams``): with the cap reached and
then lifted, every line of every replica is printed once, the output replicas are followed live
first, and a replica beyond the cap is said once and read when it ends."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from airflow_tfjob import Chief, CleanPodPolicy, RunPolicy, TfJob, Worker
from airflow_tfjob.backends.kubernetes.follower import JobFollower, TFJobEvent, settings_key
from airflow_tfjob.backends.kubernetes.messages import LATER
from airflow_tfjob.hooks import _clients
from airflow_tfjob.hooks.tfjob import AsyncTFJobHook, TFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.rules.follow import Limits
from airflow_tfjob.rules.jobref import JobRef
from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import Fate, Script
from tests.triggers.loglines import Lines, capture

REPLICAS = ("chief-0", "worker-0", "worker-1")


def _lines(job: str, replica: str) -> list[str]:
    return [f"{job} {replica} line {i}" for i in range(8)]


def _job(hook: TFJobHook, name: str, namespace: str) -> dict[str, Any]:
    policy = RunPolicy(clean_pod_policy=CleanPodPolicy.NONE)  # the pods stay: their lines too
    job = TfJob(chief=Chief(), worker=Worker(replicas=2), run_policy=policy)
    manifest = job.to_manifest(name, namespace, image="tf:2")
    manifest["metadata"].setdefault("labels", {}).update(naming.MANAGED_BY)
    return hook.create(manifest)


def _follow(settings: dict[str, Any], obj: dict[str, Any], log: logging.Logger) -> JobFollower:
    return JobFollower(
        AsyncTFJobHook(None, **settings),
        JobRef.of(obj),
        Limits(),
        key=settings_key(settings),
        log=log,
        get_logs=True,
        poll_interval=1,
    )


def test_beyond_the_cap_replicas_are_read_at_their_end_and_no_line_is_lost_or_repeated(
    replicas: Script, namespace: str, fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TFJOB__MAX_LOG_STREAMS", "2")
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    durations = {"short": 2.0, "long": 6.0}  # the short job's end frees its streams
    for job, seconds in durations.items():
        for replica in REPLICAS:
            kind, index = replica.split("-")
            fate = Fate(duration=seconds, logs=_lines(job, replica), message="{}")
            replicas.set_fate(job, kind.capitalize(), int(index), fate)
    objs = {job: _job(hook, job, namespace) for job in durations}
    logs: dict[str, Lines] = {}
    settings = hook.trigger_settings()
    peak = [0]

    async def run() -> list[TFJobEvent]:
        followers = []
        for job, obj in objs.items():
            log, logs[job] = capture(f"tests.logcap.{job}")
            followers.append(_follow(settings, obj, log))
        sampling = asyncio.create_task(_sample(fault_proxy, namespace, peak))
        try:
            return list(await asyncio.gather(*(f.run() for f in followers)))
        finally:
            sampling.cancel()

    events = asyncio.run(run())
    assert [e["kind"] for e in events] == ["finished", "finished"], events
    assert _clients.open_clients() == 0  # the shared clients closed with their last user
    for job in durations:
        printed = logs[job].lines
        for replica in REPLICAS:
            for line in _lines(job, replica):
                assert printed.count(f"[{replica}] {line}") == 1, (job, replica, line, printed)
        later = [line for line in printed if "is read when it ends" in line]
        assert f"TFJob {namespace}/{job}: the log of chief-0" not in "\n".join(later)
    said = [line for job in durations for line in logs[job].lines if "is read when it ends" in line]
    assert said, "four workers of two jobs, with two live streams: some waited"
    expected = {LATER % (f"{namespace}/{job}", worker, 2) for job in durations
                for worker in ("worker-0", "worker-1")}  # fmt: skip
    assert set(said) <= expected, said  # which job's workers wait first is the loop's to decide
    assert peak[0] <= 2 + 4, peak  # the cap, and at most the ended replicas read at their end


async def _sample(proxy: FaultProxy, namespace: str, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], proxy.open_streams(rf"/namespaces/{namespace}/pods/[^/]+/log$"))
        await asyncio.sleep(0.05)
