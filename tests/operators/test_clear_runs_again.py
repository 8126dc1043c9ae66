"""A cleared task runs again: with ``on_finish_action="keep_tfjob"`` the finished job of the run
before is replaced, not adopted as this run's result; a finished job whose try died before
taking its outcome is still adopted (that is a reattach, not a new run)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob.rules import orphans
from tests.airflow_fixtures import (
    LOGICAL_DATE,
    operator_body,
    run_dag_file,
    start_dag_file,
    task_instance,
    tfjob_hook,
    write_dag,
)
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually


def _jobs(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    return tfjob_hook(kubeconfig).list_jobs(namespace)[0]


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_cleared_task_runs_a_new_job_instead_of_returning_the_old_result(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    _, path = write_dag(
        airflow_db,
        operator_body(on_finish_action="keep_tfjob", deferrable=deferrable),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    replicas.set_default_fate("Chief", Fate(duration=0.5, message='{"run": 1}'))
    first = task_instance(run_dag_file(path, LOGICAL_DATE), "train")
    assert first.xcom_pull(task_ids="train")["output"] == {"run": 1}
    (kept,) = _jobs(kubeconfig, namespace)
    assert orphans.collected(kept)  # its outcome was taken

    replicas.set_default_fate("Chief", Fate(duration=0.5, message='{"run": 2}'))
    again = task_instance(run_dag_file(path, LOGICAL_DATE), "train")  # the run again (a clear)
    assert again.state == "success"
    assert again.xcom_pull(task_ids="train")["output"] == {"run": 2}
    (job,) = _jobs(kubeconfig, namespace)  # one job: the old one was replaced, not kept beside
    assert job["metadata"]["uid"] != kept["metadata"]["uid"]
    assert "its outcome already taken" in capfd.readouterr().out


def test_a_job_that_finished_while_its_try_was_dead_is_still_adopted(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0, message='{"run": 1}'))
    _, path = write_dag(
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
        os.killpg(worker.pid, signal.SIGKILL)  # the try dies before the job ends
        worker.wait()
    uid = job["metadata"]["uid"]
    eventually(
        lambda: "Succeeded" in str(tfjob_hook(kubeconfig).get(job["metadata"]["name"], namespace)),
        timeout=60,
    )
    replicas.set_default_fate("Chief", Fate(duration=0.5, message='{"run": 2}'))
    retried = task_instance(run_dag_file(path, LOGICAL_DATE), "train")
    assert retried.xcom_pull(task_ids="train")["output"] == {"run": 1}  # its own job's outcome
    assert [j["metadata"]["uid"] for j in _jobs(kubeconfig, namespace)] == [uid]
