"""TFJobOperator through real Airflow (``dag.test()``) against the real API server and replicas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_fixtures import operator_body, task_instance, tfjob_hook
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually


def test_success_returns_status_and_the_chiefs_output_through_xcom(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate(
        "Chief", Fate(duration=0.5, message='{"accuracy": 0.93}', logs=["epoch 1", "saved model"])
    )
    replicas.set_default_fate("Worker", Fate(duration=0.3, logs=["worker step 1"]))
    dagrun = run_dag(
        operator_body(on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    result = ti.xcom_pull(task_ids="train")
    assert result["state"] == "Succeeded"
    assert result["output"] == {"accuracy": 0.93}
    assert result["namespace"] == namespace and result["uid"]
    assert result["replica_statuses"]["Chief"]["succeeded"] == 1
    assert ti.xcom_pull(task_ids="train", key="tfjob_name") == result["name"]
    out = capfd.readouterr().out
    assert "[chief-0] epoch 1" in out and "[chief-0] saved model" in out
    assert "[worker-0] worker step 1" in out and "[worker-1] worker step 1" in out
    jobs, _ = tfjob_hook(kubeconfig).list_jobs(namespace)
    assert [j["metadata"]["name"] for j in jobs] == [result["name"]]


def test_a_failure_names_the_replica_exit_code_message_and_condition(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0))
    replicas.set_fate(
        "failing", "Worker", 1, Fate(duration=0.3, exit_code=3, message="OOM in step 12")
    )
    dagrun = run_dag(operator_body(name="failing"), namespace=namespace, kubeconfig=str(kubeconfig))
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "failed: TFJobFailed" in out
    assert "Failed replicas: worker-1 (exit code 3)" in out
    assert "worker-1 termination message: OOM in step 12" in out
    jobs, _ = tfjob_hook(kubeconfig).list_jobs(namespace)
    assert len(jobs) == 1  # a failed job is kept for inspection (delete_succeeded_tfjob)


def test_a_chiefless_job_returns_worker_0s_output(
    run_dag: Callable[..., Any], replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    replicas.set_fate(
        "chiefless", "Worker", 0, Fate(duration=0.3, message="model saved to s3://bucket/m")
    )
    replicas.set_default_fate("Worker", Fate(duration=0.3, message="not the output"))
    body = """
    TFJobOperator(task_id="train", tfjob=TfJob(worker=Worker(replicas=3)), image="tf:2", name="chiefless",
                  namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG, poll_interval=1)
    """
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train")["output"] == "model saved to s3://bucket/m"
    eventually(
        lambda: tfjob_hook(kubeconfig).list_jobs(namespace)[0] == []
    )  # deleted after success


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_no_replica_starting_fails_naming_what_the_pods_wait_for(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    replicas.set_default_fate("*", Fate(never_starts=True))
    dagrun = run_dag(
        operator_body(startup_timeout_seconds=3, deferrable=deferrable),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "no replica of TFJob" in out and "started within 3 s" in out
    assert "chief-0: " in out and "worker-1: " in out
    eventually(lambda: tfjob_hook(kubeconfig).list_jobs(namespace)[0] == [])
