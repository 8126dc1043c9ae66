"""Deferrable tasks in a real deployment: they wait in the triggerer, which ends them there.

The jobs' replicas are real local processes held at a gate (tests/live/dags/live.py), so all
19 waits of the first test (an operator, a ``@task.tfjob``, 16 mapped tasks and a sensor) are in
the triggerer at the same moment; in the second the gate is
open before the runs start, so every job ends within seconds of its task's deferral — the case
Airflow's scheduler used to fail (apache/airflow#66374) when a worker resumed the task.
"""

from __future__ import annotations

import os
import time
from typing import Any

import kubernetes

from tests.faults.proxy import FaultProxy
from tests.live.deployment import Deployment
from tests.live.jobs import Gate, gone, tfjob, triggers_started, worker_runs
from tests.live.rest import AirflowClient
from tests.waiting import eventually

MAPPED = 16
KINDS = ("tfjobs", "pods")
FAST_RUNS = int(os.environ.get("LIVE_FAST_RUNS", "1"))
"""Consecutive runs of the fast-jobs test (the issue asked for 20; CI runs 1)."""


WAITING = {"live_operator": 1, "live_function": 1, "live_mapped": MAPPED, "live_sensor": 1}
"""The deferrable tasks of the first test's runs."""


def _all_deferred(api: AirflowClient, runs: dict[str, str]) -> bool:
    return all(
        sum(ti["state"] == "deferred" for ti in api.task_instances(dag, run)) == WAITING[dag]
        for dag, run in runs.items()
    )


def test_an_operator_a_function_16_mapped_tasks_and_a_sensor_wait_in_the_triggerer_and_end_there(
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
    runs = {dag: live_api.trigger(dag, gate.conf) for dag in WAITING}
    # 19 task processes start at once: on two shared cores (load 20) the last deferred 172 s
    # after the runs were triggered, each spending minutes of CPU before its job was created
    eventually(lambda: _all_deferred(live_api, runs), timeout=300, interval=1)
    waits = sum(WAITING.values())
    eventually(
        lambda: sum(triggers_started(live, dag, run) for dag, run in runs.items()) == waits,
        timeout=30,
    )
    # 19 waits, one TFJob watch and one pod watch for the namespace, in the triggerer
    eventually(lambda: _streams(live_proxy, live_namespace) == (1, 1), timeout=60)
    time.sleep(2.0)
    assert _streams(live_proxy, live_namespace) == (1, 1)
    assert _watches(live_proxy, live_namespace) == (watched[0] + 1, watched[1] + 1)
    gate.open()

    finished = {dag: live_api.wait_for_run(dag, run, timeout=90) for dag, run in runs.items()}
    assert finished["live_operator"]["state"] == "success"
    assert finished["live_function"]["state"] == "success"
    assert finished["live_mapped"]["state"] == "failed"  # index 5
    assert finished["live_sensor"]["state"] == "success"

    operator, sensed = _check_outputs(live_api, runs, live_namespace)
    succeeded, failed = _check_mapped(live_api, runs["live_mapped"], failing=5)

    # each task instance ran on a worker once: the trigger ended it (no execute_complete)
    for dag, run in runs.items():
        count = MAPPED if dag == "live_mapped" else 2 if dag == "live_sensor" else 1
        reported = eventually(lambda run=run, count=count: _all_reported(live, run, count))
        assert set(reported.values()) == {1}, (dag, reported)
    assert "the task ends here, in the triggerer" in live_api.task_log(
        "live_operator", runs["live_operator"], "train"
    )
    # one TFJob per task instance, never a second; succeeded ones deleted once recorded, the
    # failed one kept (on_finish_action="delete_succeeded_tfjob"), the sensed one untouched
    assert live_proxy.requests(jobs, method="POST") == created + sum(WAITING.values())
    for name in [*succeeded, operator["name"]]:
        eventually(lambda name=name: gone(kube_api, live_namespace, name), timeout=30)
    assert tfjob(kube_api, live_namespace, failed) is not None
    assert tfjob(kube_api, live_namespace, sensed["name"]) is not None
    kubernetes.client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(
        "kubeflow.org", "v1", live_namespace, "tfjobs", sensed["name"]
    )


def _check_outputs(
    api: AirflowClient, runs: dict[str, str], namespace: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The XComs of the operator, the function and the sensor; the operator's and the sensor's
    ``return_value``."""
    operator = api.xcom("live_operator", runs["live_operator"], "train")
    assert operator["state"] == "Succeeded" and operator["output"] == {"index": 0}
    assert operator["namespace"] == namespace
    assert (
        api.xcom("live_operator", runs["live_operator"], "train", "tfjob_name")
        == (operator["name"])
    )
    run = runs["live_function"]
    assert api.xcom("live_function", run, "fit") == {"role": "chief-0", "value": 42}
    assert api.xcom("live_function", run, "fit", "role") == "chief-0"  # multiple_outputs
    assert api.xcom("live_function", run, "fit", "value") == 42
    run = runs["live_sensor"]
    sensed = api.xcom("live_sensor", run, "wait")
    assert sensed["state"] == "Succeeded" and sensed["output"] == {"index": 0}
    assert sensed["name"] == api.xcom("live_sensor", run, "submit", "tfjob_name")
    return operator, sensed


def _check_mapped(api: AirflowClient, run: str, *, failing: int) -> tuple[list[str], str]:
    """Each map index's own XCom, the failing one's report in its log; the job names of the
    succeeded tasks and of the failed one."""
    succeeded, failed = [], ""
    for ti in api.task_instances("live_mapped", run):
        index = ti["map_index"]
        name = api.xcom("live_mapped", run, "train", "tfjob_name", index)
        if index == failing:
            assert ti["state"] == "failed"
            log = api.task_log("live_mapped", run, "train", map_index=index)
            assert "1 Worker replica(s) failed" in log and "worker-0 (exit code 3)" in log, log
            assert f"shard {index} is corrupt" in log, log
            failed = name
            continue
        assert ti["state"] == "success", ti
        result = api.xcom("live_mapped", run, "train", map_index=index)
        assert result["output"] == {"index": index} and result["state"] == "Succeeded"
        succeeded.append(name)
    assert len({*succeeded, failed}) == MAPPED
    return succeeded, failed


def test_jobs_that_finish_seconds_after_the_deferral_end_their_tasks_in_success(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    gate.open()  # every replica ends as soon as it starts
    figures: list[str] = []  # printed as they come (pytest -s shows them)
    for attempt in range(FAST_RUNS):
        began = time.monotonic()
        run = live_api.trigger("live_mapped", gate.conf)
        # 16 task processes at once: 230 s to the last deferral on two shared cores at load 23
        state = live_api.wait_for_run("live_mapped", run, timeout=360)["state"]
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
        print(figures[-1], flush=True)


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
