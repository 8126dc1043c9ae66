"""The operator's deferred path under dag.test() (which runs the trigger inline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_fixtures import RESULT_KEYS, operator_body, task_instance, tfjob_hook
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually


def test_the_deferred_path_returns_the_same_result_as_the_sync_one(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=2.0, message='{"auc": 0.8}'))
    dagrun = run_dag(
        operator_body(deferrable=True), namespace=namespace, kubeconfig=str(kubeconfig)
    )
    ti = task_instance(dagrun, "train")
    assert ti.state == "success"
    result = ti.xcom_pull(task_ids="train")
    assert result["state"] == "Succeeded" and result["output"] == {"auc": 0.8}
    assert set(result) == RESULT_KEYS
    out = capfd.readouterr().out
    assert "Pausing task as DEFERRED" in out
    assert (
        "Succeeded (Chief: succeeded 1" in out and "[airflow_tfjob.triggers.tfjob" in out
    )  # the trigger saw it
    eventually(lambda: tfjob_hook(kubeconfig).list_jobs(namespace)[0] == [])


def test_a_deferred_failure_names_the_failing_replica(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0))
    replicas.set_fate(
        "deferred-fail", "Worker", 0, Fate(duration=0.5, exit_code=137, message="killed")
    )
    replicas.set_fate(
        "deferred-fail", "Worker", 1, Fate(duration=0.3, exit_code=2, logs=["reading shard 7"])
    )
    dagrun = run_dag(
        operator_body(deferrable=True, name="deferred-fail"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    assert "worker-1 (exit code 2)" in out
    assert "worker-1 last log lines:\nreading shard 7" in out  # no termination message: the log


def test_a_job_already_finished_is_collected_without_deferring_or_submitting_twice(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    kube_api: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_tfjob import Chief, TfJob, Worker
    from airflow_tfjob.model import naming
    from tests.airflow_fixtures import LOGICAL_DATE, run_dag_file, write_dag
    from tests.cluster import jobs as tfjobs

    dag_id, path = write_dag(
        airflow_db, operator_body(deferrable=True), namespace=namespace, kubeconfig=str(kubeconfig)
    )
    run_id = f"manual__{LOGICAL_DATE.isoformat()}"
    name = naming.job_name(dag_id, "train", run_id, -1)
    replicas.set_fate(name, "Chief", 0, Fate(duration=0.1, message='{"done": true}'))
    labels = naming.task_labels(dag_id, "train", run_id, -1, 1)
    manifest = TfJob(chief=Chief(), worker=Worker(replicas=2)).to_manifest(
        name, namespace, image="tf:2", labels=labels
    )
    tfjob_hook(kubeconfig).create(manifest)  # an earlier try's job, finished meanwhile
    tfjobs.wait_for(kube_api, namespace, name, tfjobs.has("Succeeded"), timeout=60)

    ti = task_instance(run_dag_file(path, LOGICAL_DATE), "train")
    out = capfd.readouterr().out
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train")["output"] == {"done": True}
    assert "Pausing task as DEFERRED" not in out  # nothing to wait for
    assert out.count(f"Adopting TFJob {namespace}/{name} ") == 1, out  # submitted once
