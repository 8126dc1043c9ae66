"""Users and the OS ending tasks in a real deployment: marking a deferred or a running task failed
through the REST API leaves no TFJob, pod or process behind; a worker SIGKILLed mid-run is
retried, and the retry adopts the job the first try created instead of submitting another."""

from __future__ import annotations

import signal
from typing import Any

import kubernetes
import psutil

from tests.faults.proxy import FaultProxy
from tests.live.deployment import Deployment
from tests.live.jobs import Gate, gone, pods, tfjob, triggers_started
from tests.live.rest import AirflowClient
from tests.waiting import eventually


def _job_running(kube_api: kubernetes.client.ApiClient, namespace: str, name: str) -> bool:
    job = tfjob(kube_api, namespace, name) or {}
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Running" and c["status"] == "True" for c in conditions)


def _submitted(api: AirflowClient, dag: str, run: str) -> str | None:
    try:
        return str(api.xcom(dag, run, "train", "tfjob_name"))
    except KeyError:
        return None


def test_marking_a_deferred_task_failed_deletes_its_job_and_pods(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    dag = "live_operator"
    run = live_api.trigger(dag, gate.conf)
    live_api.wait_for_task(dag, run, "train", ["deferred"], timeout=90)
    eventually(lambda: triggers_started(live, dag, run) == 1, timeout=60)  # its trigger runs
    name = live_api.xcom(dag, run, "train", "tfjob_name")
    eventually(lambda: _job_running(kube_api, live_namespace, name), timeout=30)
    assert pods(kube_api, live_namespace, name)

    live_api.set_task_state(dag, run, "train", "failed")
    eventually(lambda: gone(kube_api, live_namespace, name), timeout=60)
    assert live_api.task_instance(dag, run, "train")["state"] == "failed"
    log = live_api.task_log(dag, run, "train")
    assert f"Deleted TFJob {live_namespace}/{name}: the task was killed" in log, log


def test_marking_a_running_task_failed_deletes_its_job_pods_and_processes(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    dag = "live_sync"
    run, name, ti, runner = _sync_task_running(live, live_api, kube_api, live_namespace, gate)

    live_api.set_task_state(dag, run, "train", "failed")
    eventually(lambda: gone(kube_api, live_namespace, name), timeout=60)
    eventually(lambda: not psutil.pid_exists(runner) or _zombie(runner), timeout=30)
    assert live.task_processes(ti["id"]).runner is None
    assert live_api.task_instance(dag, run, "train")["state"] == "failed"


def test_a_worker_killed_mid_run_is_retried_and_the_retry_adopts_its_job(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    live_proxy: FaultProxy,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
) -> None:
    dag = "live_sync"
    created = live_proxy.requests(rf"/namespaces/{live_namespace}/tfjobs$", method="POST")
    run, name, ti, runner = _sync_task_running(live, live_api, kube_api, live_namespace, gate)
    uid = (tfjob(kube_api, live_namespace, name) or {})["metadata"]["uid"]

    psutil.Process(runner).send_signal(signal.SIGKILL)  # the OOM killer, say: no on_kill
    retry = live_api.wait_for_task(dag, run, "train", ["running"], timeout=90)
    eventually(lambda: live_api.task_instance(dag, run, "train")["try_number"] == 2, timeout=60)
    eventually(lambda: "Adopting TFJob" in live_api.task_log(dag, run, "train", 2), timeout=60)
    gate.open()
    assert live_api.wait_for_run(dag, run, timeout=90)["state"] == "success"

    tries = live_api.tries(dag, run, "train")
    assert [t["state"] for t in tries] == ["failed", "success"], tries
    result = live_api.xcom(dag, run, "train")
    assert (result["name"], result["uid"]) == (name, uid)  # the same job, adopted
    assert result["output"] == {"index": 0}
    # a synchronous wait streams the replica's log into the real task log (the worker runs the
    # trigger's follower in an event loop of its own): from the adopted job's start, once
    log = live_api.task_log(dag, run, "train", 2)
    assert log.count("[worker-0] replica of index 0 waits for") == 1, log[-3000:]
    assert "[worker-0] {" in log and "Succeeded" in log
    # the first try's create, and the retry's, which met a 409 Conflict and adopted the job
    assert live_proxy.requests(rf"/namespaces/{live_namespace}/tfjobs$", method="POST") == (
        created + 2
    )
    assert retry["id"] == ti["id"]
    eventually(lambda: gone(kube_api, live_namespace, name), timeout=30)


def _sync_task_running(
    live: Deployment,
    api: AirflowClient,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    gate: Gate,
) -> tuple[str, str, dict[str, Any], int]:
    """A run of ``live_sync`` whose task waits for its running job on a worker: the run id, the
    job's name, the task instance and the PID of its task process."""
    run = api.trigger("live_sync", gate.conf)
    name = eventually(lambda: _submitted(api, "live_sync", run), timeout=90)
    eventually(lambda: _job_running(kube_api, namespace, name), timeout=30)
    ti = api.task_instance("live_sync", run, "train")
    assert ti["state"] == "running"
    runner = live.task_processes(ti["id"]).runner
    assert runner is not None, ti
    return run, name, ti, runner


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
