"""A deferred wait in a real deployment survives what happens to the triggerer and its streams:
the triggerer stopped with SIGTERM and started again, then killed with SIGKILL and started again
(its triggers move to the new one), then a 410 and cut watch streams. The task still succeeds
with its job's output, and that job is the only one ever created for it."""

from __future__ import annotations

import signal

import kubernetes

from tests.faults.proxy import FaultProxy
from tests.live.deployment import Deployment
from tests.live.jobs import Gate, gone, triggers_started
from tests.live.rest import AirflowClient
from tests.waiting import eventually

DAG = "live_operator"


def test_a_deferred_wait_survives_triggerer_restarts_a_410_and_cut_streams(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    live_proxy: FaultProxy,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    jobs = rf"/namespaces/{live_namespace}/tfjobs$"
    created = live_proxy.requests(jobs, method="POST")
    run = live_api.trigger(DAG, gate.conf)
    live_api.wait_for_task(DAG, run, "train", ["deferred"], timeout=90)
    eventually(lambda: triggers_started(live, DAG, run) == 1, timeout=60)
    name = live_api.xcom(DAG, run, "train", "tfjob_name")

    eventually(lambda: live_proxy.open_streams(jobs) == 1, timeout=60)  # it is watching
    live.restart("triggerer", signal.SIGTERM)
    # the trigger runs again in the new triggerer, from its serialized kwargs
    eventually(lambda: triggers_started(live, DAG, run) == 2, timeout=60)
    assert live_api.task_instance(DAG, run, "train")["state"] == "deferred"
    eventually(lambda: live_proxy.open_streams(jobs) == 1, timeout=60)
    watches = live_proxy.requests(jobs, watch=True)
    # the next triggerer's TFJob watches are cut twice, then answered 410 Gone
    cut = live_proxy.cut_watch(jobs, after_seconds=0.5, times=2)
    expired = live_proxy.gone(jobs, times=1)
    live.restart("triggerer", signal.SIGKILL)
    # after a SIGKILL the trigger moves once the dead triggerer's heartbeat is stale
    eventually(lambda: triggers_started(live, DAG, run) == 3, timeout=60)
    assert live_api.task_instance(DAG, run, "train")["state"] == "deferred"
    eventually(lambda: cut.hits == 2 and expired.hits == 1, timeout=60)
    eventually(lambda: live_proxy.open_streams(jobs) == 1, timeout=60)  # watching again
    assert live_proxy.requests(jobs, watch=True) >= watches + 4  # cut, cut, 410, watching

    gate.open()
    finished = live_api.wait_for_run(DAG, run, timeout=90)
    assert finished["state"] == "success", live_api.task_log(DAG, run, "train")
    result = live_api.xcom(DAG, run, "train")
    assert result["name"] == name and result["output"] == {"index": 0}
    assert live_api.task_instance(DAG, run, "train")["try_number"] == 1
    assert live_proxy.requests(jobs, method="POST") == created + 1  # one job, never a second
    eventually(lambda: gone(kube_api, live_namespace, name), timeout=30)
