"""The TFJobs page's API shows a Trainer v2 TrainJob as it shows a TFJob: its connection sets no
``tfjob_api``, so the page reads both APIs the cluster serves (``TFJobHook.served_hooks``). The
TrainJob is made here, in the page's namespace, for an existing task instance, and deleted after
(the other tests of the package count the page's jobs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.rules import status
from tests.kubelet.fates import Fate
from tests.ui.conftest import CHIEF_LOG, DAGS, RUNS, WORKER_LOG, UiJobs, UiServer, manifest
from tests.waiting import eventually

NAME = "public-train-trainjob"


@pytest.fixture
def trainjob(ui_jobs: UiJobs, kubeconfig: Path) -> Iterator[str]:
    """A succeeded TrainJob (chief + 2 workers) of the second try of ``public_train``'s task
    instance of the "succeeded" run."""
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig), api="trainjob")
    ui_jobs.replicas.set_fate(
        NAME, "Chief", 0, Fate(duration=0.5, logs=CHIEF_LOG, message='{"loss": 0.32}')
    )
    ui_jobs.replicas.set_fate(NAME, "Worker", 1, Fate(logs=WORKER_LOG))
    dag_id, run_id = RUNS["succeeded"]
    hook.create(manifest(NAME, ui_jobs.namespace, dag_id, DAGS[dag_id], run_id, try_number=2))
    eventually(
        lambda: status.job_state(hook.get(NAME, ui_jobs.namespace)).phase == "Succeeded",
        timeout=60,
    )
    try:
        yield NAME
    finally:
        hook.delete(NAME, ui_jobs.namespace)
        eventually(lambda: not hook.list_jobs(ui_jobs.namespace)[0], timeout=60)


def _listed(server: UiServer, user: str) -> dict[str, Any]:
    response = server.get("/tfjob/api/jobs", user)
    assert response.status_code == 200, response.text
    (target,) = [t for t in response.json()["targets"] if t["conn_id"] == "tfjob_test"]
    return {row["name"]: row for row in target["jobs"]}


def test_the_list_and_the_detail_show_a_trainjob_as_a_tfjob(
    ui_server: UiServer, ui_jobs: UiJobs, trainjob: str
) -> None:
    rows = _listed(ui_server, "viewer")
    assert set(rows) == {*ui_jobs.names.values(), trainjob} - {ui_jobs.names["secret"]}
    row, tfjob = rows[trainjob], rows[ui_jobs.names["succeeded"]]
    assert row["state"] == "Succeeded" and row["try_number"] == 2
    assert row["task"] == tfjob["task"]
    assert row["task_instance_path"] == tfjob["task_instance_path"]
    assert row["duration_seconds"] >= 0
    assert {t: r["total"] for t, r in row["replicas"].items()} == {"Chief": 1, "Worker": 2}

    detail = ui_server.get(f"/tfjob/api/jobs/tfjob_test/{ui_jobs.namespace}/{trainjob}", "viewer")
    assert detail.status_code == 200, detail.text
    shown = detail.json()
    kinds = [c["type"] for c in shown["conditions"]]
    assert kinds[0] == "Created" and kinds[-1] == "Succeeded"
    assert shown["replicas"] == tfjob["replicas"]  # counted from its pods
    assert shown["log_replica"] == "chief-0"
    assert shown["log"] == CHIEF_LOG
    pods = {p["replica"]: p for p in shown["pods"]}
    assert set(pods) == {"chief-0", "worker-0", "worker-1"}
    assert pods["chief-0"]["phase"] == "Succeeded" and pods["chief-0"]["exit_code"] == 0


def test_the_list_counts_a_trainjobs_replicas_as_a_tfjobs(
    ui_server: UiServer, ui_jobs: UiJobs, trainjob: str
) -> None:
    rows = _listed(ui_server, "viewer")
    assert rows[trainjob]["replicas"] == rows[ui_jobs.names["succeeded"]]["replicas"]
