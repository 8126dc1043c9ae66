"""The operator's extra links exist while the task runs: "TFJob" (the configured dashboard URL)
and "TFJob monitor" (the TFJobs page), written as XComs the moment the job is created."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from airflow_tfjob.demo import latest_xcom
from tests.airflow_fixtures import start_dag_file, tfjob_hook, write_dag
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually

BODY = """
TFJobOperator(
    task_id="train",
    tfjob=TfJob(chief=Chief(), worker=Worker()),
    image="tf:2",
    kubernetes_conn_id="tfjob_links",
    poll_interval=1,
)
"""


def test_both_links_are_there_while_the_job_runs(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kubeconfig), "namespace": namespace},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TFJOB_LINKS", json.dumps(connection))
    monkeypatch.setenv(
        "AIRFLOW__TFJOB__TFJOB_URL_TEMPLATE",
        "https://kubeflow.example/{namespace}/{name}?uid={uid}",
    )
    replicas.set_default_fate("Chief", Fate(duration=8.0))
    dag_id, path = write_dag(airflow_db, BODY)
    task = start_dag_file(path, tmp_path / "task.log")
    try:
        monitor = eventually(
            lambda: latest_xcom(dag_id, "train", "_link_TFJobMonitorLink"), timeout=60
        )
        (job,) = tfjob_hook(kubeconfig).list_jobs(namespace)[0]
        assert "completionTime" not in (job.get("status") or {})  # still running
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        assert monitor == f"/tfjob/?conn_id=tfjob_links&namespace={namespace}&name={name}"
        dashboard = latest_xcom(dag_id, "train", "_link_TFJobLink")
        assert dashboard == f"https://kubeflow.example/{namespace}/{name}?uid={uid}"
        assert task.wait(timeout=120) == 0, (tmp_path / "task.log").read_text()[-3000:]
    finally:
        if task.poll() is None:
            os.killpg(task.pid, signal.SIGKILL)
    assert latest_xcom(dag_id, "train", "_link_TFJobMonitorLink") == monitor  # kept at the end
    assert latest_xcom(dag_id, "train", "_link_TFJobLink") == dashboard
