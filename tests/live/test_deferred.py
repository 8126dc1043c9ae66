"""Deferrable tasks in a real deployment: they wait in the triggerer, which ends them there.

The jobs' replicas are real local processes held at a gate (tests/live/dags/live.py), so all
18 tasks of the first test wait in the triggerer at the same moment; in the second the gate is
open before the runs start, so every job ends within seconds of its task's deferral — the case
Airflow's scheduler used to fail (apache/airflow#66374) when a worker resumed the task.
"""

from __future__ import annotations

import os
import time
from typing import Any

import kubernetes

from tests.live.deployment import Deployment
from tests.live.jobs import Gate, gone, tfjob, triggers_started, worker_runs
from tests.live.rest import AirflowClient
from tests.sim.proxy import FaultProxy
from tests.waiting import eventually

MAPPED = 16
KINDS = ("tfjobs", "pods")
FAST_RUNS = int(os.environ.get("LIVE_FAST_RUNS", "1"))
"""Consecutive runs of the fast-jobs test (the issue asked for 20; CI runs 1)."""


def _all_in(api: AirflowClient, runs: dict[str, str], state: str) -> bool:
    states = [ti["state"] for dag, run in runs.items() for ti in api.task_instances(dag, run)]
    return len(states) == MAPPED + 2 and set(states) == {state}


def test_an_operator_a_function_and_16_mapped_tasks_wait_in_the_triggerer_and_end_there(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    live_proxy: FaultProxy,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    jobs = rf"/namespaces/{live_namespace}/tfjobs$"
    created = live_proxy.requests(jobs, method="POST")
    watched = _watches(live_proxy, live_namespace)
    gate.fail(5)  # map index 5's job fails once the gate opens
    runs = {
        dag: live_api.trigger(dag, gate.conf)
        for dag in ("live_operator", "live_function", "live_mapped")
    }
    eventually(lambda: _all_in(live_api, runs, "deferred"), timeout=150, interval=1)
    eventually(
        lambda: sum(triggers_started(live, dag, run) for dag, run in runs.items()) == MAPPED + 2,
        timeout=30,
    )
    # 18 waits, one TFJob watch and one pod watch for the namespace, in the triggerer
    eventually(lambda: _streams(live_proxy, live_namespace) == (1, 1), timeout=60)
    time.sleep(2.0)
    assert _streams(live_proxy, live_namespace) == (1, 1)
    assert _watches(live_proxy, live_namespace) == (watched[0] + 1, watched[1] + 1)
    gate.open()

    finished = {dag: live_api.wait_for_run(dag, run, timeout=90) for dag, run in runs.items()}
    assert finished["live_operator"]["state"] == "success"
    assert finished["live_function"]["state"] == "success"
    assert finished["live_mapped"]["state"] == "failed"  # index 5

    operator = live_api.xcom("live_operator", runs["live_operator"], "train")
    assert operator["state"] == "Succeeded" and operator["output"] == {"index": 0}
    assert operator["namespace"] == live_namespace
    assert (
        live_api.xcom("live_operator", runs["live_operator"], "train", "tfjob_name")
        == (operator["name"])
    )

    run = runs["live_function"]
    assert live_api.xcom("live_function", run, "fit") == {"role": "chief-0", "value": 42}
    assert live_api.xcom("live_function", run, "fit", "role") == "chief-0"  # multiple_outputs
    assert live_api.xcom("live_function", run, "fit", "value") == 42

    run = runs["live_mapped"]
    names = set()
    for ti in live_api.task_instances("live_mapped", run):
        index = ti["map_index"]
        names.add(live_api.xcom("live_mapped", run, "train", "tfjob_name", index))
        if index == 5:
            assert ti["state"] == "failed"
            log = live_api.task_log("live_mapped", run, "train", map_index=5)
            assert "1 Worker replica(s) failed" in log and "worker-0 (exit code 3)" in log, log
            assert "shard 5 is corrupt" in log, log
            continue
        assert ti["state"] == "success", ti
        result = live_api.xcom("live_mapped", run, "train", map_index=index)
        assert result["output"] == {"index": index} and result["state"] == "Succeeded"
    assert len(names) == MAPPED

    # each task instance ran on a worker once: the trigger ended it (no execute_complete)
    for dag, run in runs.items():
        count = MAPPED if dag == "live_mapped" else 1
        reported = eventually(lambda run=run, count=count: _all_reported(live, run, count))
        assert set(reported.values()) == {1}, (dag, reported)
    assert "the task ends here, in the triggerer" in live_api.task_log(
        "live_operator", runs["live_operator"], "train"
    )
    # one TFJob per task instance, never a second; succeeded ones deleted once recorded,
    # the failed one kept (on_finish_action="delete_succeeded_tfjob")
    assert live_proxy.requests(jobs, method="POST") == created + MAPPED + 2
    failed_job = live_api.xcom("live_mapped", run, "train", "tfjob_name", 5)
    kept = {failed_job}
    for name in names - kept | {operator["name"]}:
        eventually(lambda name=name: gone(kube_api, live_namespace, name), timeout=30)
    assert tfjob(kube_api, live_namespace, failed_job) is not None


def test_jobs_that_finish_seconds_after_the_deferral_end_their_tasks_in_success(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    gate.open()  # every replica ends as soon as it starts
    figures: list[str] = []
    for attempt in range(FAST_RUNS):
        began = time.monotonic()
        run = live_api.trigger("live_mapped", gate.conf)
        state = live_api.wait_for_run("live_mapped", run, timeout=180)["state"]
        tis = live_api.task_instances("live_mapped", run)
        bad = [(ti["map_index"], ti["state"]) for ti in tis if ti["state"] != "success"]
        assert state == "success" and not bad, (attempt, bad)
        outputs = [
            live_api.xcom("live_mapped", run, "train", map_index=i)["output"] for i in range(MAPPED)
        ]
        assert outputs == [{"index": i} for i in range(MAPPED)]
        # the workers' exits reach the scheduler after their triggers ended the tasks
        runs = eventually(lambda run=run: _all_reported(live, run, MAPPED), timeout=30)
        assert set(runs.values()) == {1}, runs
        deferred = _deferred_count(live_api, run, tis)
        figures.append(f"run {attempt + 1}: {time.monotonic() - began:.0f} s, {deferred} deferred")
    print("\n".join(figures))


def _all_reported(live: Deployment, run: str, count: int) -> dict[tuple[str, int], int]:
    """The worker runs of ``run``'s task instances once all ``count`` have been reported."""
    runs = worker_runs(live, run)
    return runs if len(runs) == count else {}


def _streams(proxy: FaultProxy, namespace: str) -> tuple[int, int]:
    """Watch streams open now on the namespace's TFJobs and pods."""
    return tuple(proxy.open_streams(rf"/namespaces/{namespace}/{kind}$") for kind in KINDS)  # type: ignore[return-value]


def _watches(proxy: FaultProxy, namespace: str) -> tuple[int, int]:
    """Watch requests so far on the namespace's TFJobs and pods."""
    return tuple(proxy.requests(rf"/namespaces/{namespace}/{kind}$", watch=True) for kind in KINDS)  # type: ignore[return-value]


def _deferred_count(api: AirflowClient, run: str, tis: list[dict[str, Any]]) -> int:
    """How many of the run's tasks deferred (a job already finished at submission is not)."""
    return sum(
        "Pausing task as DEFERRED"
        in api.task_log("live_mapped", run, "train", map_index=ti["map_index"])
        for ti in tis
    )
