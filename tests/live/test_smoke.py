"""Smoke test of the live tier: a deferrable TFJobOperator, triggered through the REST API of a
real deployment, runs its TFJob through the fault proxy and waits for it in the triggerer."""

from __future__ import annotations

import uuid

import kubernetes
import pytest

from tests.live.deployment import Deployment
from tests.live.rest import AirflowClient
from tests.sim.proxy import FaultProxy
from tests.waiting import eventually

DAG = "live_smoke"


def _absent(kube_api: kubernetes.client.ApiClient, namespace: str, name: str) -> bool:
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    try:
        custom.get_namespaced_custom_object("kubeflow.org", "v1", namespace, "tfjobs", name)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def test_a_deferrable_tfjob_runs_in_a_live_deployment(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    live_proxy: FaultProxy,
    kube_api: kubernetes.client.ApiClient,
) -> None:
    tfjobs = rf"/namespaces/{live_namespace}/tfjobs$"
    posts, gets = (live_proxy.requests(tfjobs, method=m) for m in ("POST", "GET"))
    live_api.wait_for_dag(DAG)
    run_id = live_api.trigger(DAG)
    run = live_api.wait_for_run(DAG, run_id, timeout=120)
    log = live_api.task_log(DAG, run_id, "train")
    if run["state"] != "success":
        pytest.fail(
            f"run {run['state']}; task log:\n{log}\ntriggerer:\n{live.components['triggerer'].read_log()[-4000:]}"
        )

    result = live_api.xcom(DAG, run_id, "train")
    name = live_api.xcom(DAG, run_id, "train", key="tfjob_name")
    assert result["state"] == "Succeeded"
    assert result["name"] == name
    assert name.startswith("live-smoke-train-")
    assert result["namespace"] == live_namespace
    assert live_api.xcom(DAG, run_id, "train", key="tfjob_namespace") == live_namespace
    assert uuid.UUID(result["uid"])

    (ti,) = live_api.task_instances(DAG, run_id)
    assert (ti["task_id"], ti["state"], ti["try_number"]) == ("train", "success", 1)
    # It waited in the triggerer: the task deferred, the trigger ran there (its lines are in the
    # task log) and fired. The worker's POST and the trigger's reads went through the proxy.
    assert "Pausing task as DEFERRED" in log, log
    assert f"trigger {DAG}/{run_id}/train/-1/1 (ID " in log, log
    assert f"TFJob {live_namespace}/{name} Succeeded" in log, log
    assert "Trigger fired event" in log, log
    assert live_proxy.requests(tfjobs, method="POST") == posts + 1
    assert live_proxy.requests(tfjobs, method="GET") > gets  # the trigger's list (and watch)
    # on_finish_action="delete_succeeded_tfjob" (the default): the job is gone.
    eventually(lambda: _absent(kube_api, live_namespace, name), timeout=30)
