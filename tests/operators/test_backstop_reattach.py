"""A retry that adopts its running job gets its own time: the deadline backstop its first try
set (``activeDeadlineSeconds`` = that try's ``execution_timeout`` + margin, counted by the
training operator from the job's start) is raised, not enforced on the retry."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.model import naming
from airflow_tfjob.rules import backstop
from tests.airflow_fixtures import (
    LOGICAL_DATE,
    operator_body,
    run_dag_file,
    task_instance,
    tfjob_hook,
    write_dag,
)
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually

RUN_ID = f"manual__{LOGICAL_DATE.isoformat()}"
FIRST_TRY_BACKSTOP = 20
"""The first try's backstop in seconds (a short execution_timeout, shrunk for the test)."""


def test_a_retry_adopting_its_job_late_in_the_first_try_is_not_killed_by_its_backstop(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Deferred: the worker adopts the job and raises its backstop (backends/kubernetes/submit.py)
    # before it defers, as a sync task does before it waits; the deferred wait then outlives it.
    replicas.set_default_fate("Chief", Fate(duration=30.0, message='{"loss": 0.3}'))
    dag_id, path = write_dag(
        airflow_db,
        operator_body(
            "execution_timeout=datetime.timedelta(seconds=40),",
            on_finish_action="keep_tfjob",
            deferrable=True,
        ),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    # the job as the first try made it, with its backstop; that try's worker then died
    hook = tfjob_hook(kubeconfig)
    name = naming.job_name(dag_id, "train", RUN_ID, -1)
    manifest = TfJob(chief=Chief(), worker=Worker()).to_manifest(
        name, namespace, image="tf:2", labels=naming.task_labels(dag_id, "train", RUN_ID, -1, 1)
    )
    backstop.apply(manifest, FIRST_TRY_BACKSTOP)
    first = hook.create(manifest)
    eventually(lambda: hook.get(name, namespace).get("status", {}).get("startTime"))
    time.sleep(4)  # the retry starts well into the first try's backstop

    ti = task_instance(run_dag_file(path, LOGICAL_DATE), "train")  # the retry adopts the job

    assert ti.state == "success"  # it ran its 30 s, past the first try's 20
    assert ti.xcom_pull(task_ids="train")["output"] == {"loss": 0.3}
    job = hook.get(name, namespace)
    assert job["metadata"]["uid"] == first["metadata"]["uid"]
    raised = job["spec"]["runPolicy"]["activeDeadlineSeconds"]
    started = datetime.datetime.fromisoformat(job["status"]["startTime"].replace("Z", "+00:00"))
    ran = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
    assert 4 + 40 + 60 <= raised <= ran + 40 + 60 + 1  # its run so far + this try's allowance
    assert "raising runPolicy.activeDeadlineSeconds from 20" in capfd.readouterr().out
