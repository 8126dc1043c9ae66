"""Reattach, races, deadlines and kills: nothing duplicated, nothing left running."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.model import naming
from tests.airflow_fixtures import (
    LOGICAL_DATE,
    operator_body,
    run_dag_file,
    start_dag_file,
    task_instance,
    tfjob_hook,
    write_dag,
)
from tests.cluster.cluster import closing_client
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually

RUN_ID = f"manual__{LOGICAL_DATE.isoformat()}"


def _jobs(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    return tfjob_hook(kubeconfig).list_jobs(namespace)[0]


def test_a_restarted_worker_adopts_the_running_job_instead_of_creating_another(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=8.0, message='{"loss": 0.1}'))
    dag_id, path = write_dag(
        airflow_db,
        operator_body(on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    worker = start_dag_file(path, tmp_path / "first-try.log")
    try:
        (job,) = eventually(
            lambda: [j for j in _jobs(kubeconfig, namespace) if j.get("status")], timeout=60
        )
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies; the job runs on
        worker.wait()
    dagrun = run_dag_file(path, LOGICAL_DATE)
    ti = task_instance(dagrun, "train")
    out = capfd.readouterr().out
    assert ti.state == "success"
    assert "Adopting TFJob" in out
    (only,) = _jobs(kubeconfig, namespace)
    assert only["metadata"]["uid"] == job["metadata"]["uid"]
    assert ti.xcom_pull(task_ids="train")["output"] == {"loss": 0.1}
    assert job["metadata"]["name"] == naming.job_name(dag_id, "train", RUN_ID, -1)


def test_a_409_from_a_concurrent_create_adopts_the_job(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=1.0))
    dag_id, path = write_dag(
        airflow_db,
        operator_body(on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    name = naming.job_name(dag_id, "train", RUN_ID, -1)
    labels = naming.task_labels(dag_id, "train", RUN_ID, -1, 1)
    racer = tfjob_hook(kubeconfig).create(
        TfJob(chief=Chief(), worker=Worker()).to_manifest(
            name, namespace, image="tf:2", labels=labels
        )
    )
    dagrun = run_dag_file(path, LOGICAL_DATE)
    assert task_instance(dagrun, "train").state == "success"
    assert "Adopting TFJob" in capfd.readouterr().out
    assert [j["metadata"]["uid"] for j in _jobs(kubeconfig, namespace)] == [
        racer["metadata"]["uid"]
    ]


def test_a_job_of_someone_else_under_our_name_is_an_error_and_left_alone(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    theirs = tfjob_hook(kubeconfig).create(
        TfJob().to_manifest(
            "shared-name", namespace, image="tf:2", labels={"owner": "someone-else"}
        )
    )
    dagrun = run_dag(
        operator_body(on_finish_action="keep_tfjob", name="shared-name"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    assert task_instance(dagrun, "train").state == "failed"
    assert "already exists and was not created by this task instance" in capfd.readouterr().out
    assert [j["metadata"]["uid"] for j in _jobs(kubeconfig, namespace)] == [
        theirs["metadata"]["uid"]
    ]


def test_execution_timeout_deletes_the_job_and_fails_clearly(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))  # never finishes
    extra = "execution_timeout=datetime.timedelta(seconds=8),"
    dagrun = run_dag(
        operator_body(extra, on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "did not finish before the task's execution_timeout (" in out
    eventually(lambda: _jobs(kubeconfig, namespace) == [])
    eventually(lambda: cluster_pods(kubeconfig, namespace) == [])


def test_killing_the_task_deletes_the_job(
    airflow_db: Path, replicas: Script, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))
    _, path = write_dag(
        airflow_db,
        operator_body(on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    worker = start_dag_file(path, tmp_path / "killed.log")
    try:
        eventually(lambda: [j for j in _jobs(kubeconfig, namespace) if j.get("status")], timeout=60)
        os.kill(
            worker.pid, signal.SIGTERM
        )  # what Airflow sends when a user kills or marks the task
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    eventually(lambda: _jobs(kubeconfig, namespace) == [], timeout=30)
    assert "Deleted TFJob" in (tmp_path / "killed.log").read_text()


def cluster_pods(kubeconfig: Path, namespace: str) -> list[str]:
    """Names of the pods left in the namespace."""
    from kubernetes import client

    with closing_client(kubeconfig) as api_client:  # closed: no socket left to the GC
        pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace).items
    return [p.metadata.name for p in pods]
