"""``TFJobReaperOperator`` through ``dag.test()`` against the test cluster: it deletes the running
jobs of this deployment whose task instance ended or no longer exists, and touches nothing else
(another deployment's job, a job without our labels, a finished job, a job handed off on purpose,
a job of a DAG this Airflow does not know, a job its task said to keep)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from airflow_tfjob import Chief, TfJob
from airflow_tfjob.model import naming
from airflow_tfjob.rules import orphans
from tests.airflow_fixtures import task_instance, tfjob_hook
from tests.cluster import jobs as tfjobs
from tests.kubelet.fates import RUNS_FOR_EVER, Fate, Script
from tests.waiting import eventually

FAILING_TASK = """
from airflow.sdk import task

@task
def train():
    raise ValueError("the task fails; its job would run on")

train()
"""
REAPER = """
from airflow_tfjob.operators.reaper import TFJobReaperOperator

TFJobReaperOperator(task_id="reap", grace_seconds=1, targets=[("k8s_reaper_test", NAMESPACE)])
"""


def _job(
    name: str,
    namespace: str,
    task: tuple[str, str, str] | None,
    *,
    deployment: str | None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels, notes = {"team": "ml"}, dict(annotations or {})
    if task is not None:
        dag_id, task_id, run_id = task
        labels = naming.task_labels(dag_id, task_id, run_id, -1, 1, deployment=deployment)
        notes.update(naming.task_annotations(dag_id, task_id, run_id, -1))
    return TfJob(chief=Chief()).to_manifest(
        name, namespace, image="tf:2", labels=labels, annotations=notes
    )


def test_the_reaper_deletes_orphans_of_this_deployment_and_nothing_else(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    kube_api: kubernetes.client.ApiClient,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_tfjob.operators import _settings

    connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}
    monkeypatch.setenv("AIRFLOW_CONN_K8S_REAPER_TEST", json.dumps(connection))
    failed = run_dag(FAILING_TASK)  # a real task instance that ended: failed
    ti = task_instance(failed, "train")
    assert ti.state == "failed"
    ours, dag_id, run_id = _settings.deployment(), failed.dag_id, failed.run_id
    replicas.set_default_fate("Chief", RUNS_FOR_EVER)
    replicas.set_fate("finished", "Chief", 0, Fate(duration=0.1))
    jobs = {
        "task-failed": _job("task-failed", namespace, (dag_id, "train", run_id), deployment=ours),
        "run-gone": _job("run-gone", namespace, (dag_id, "train", "manual__gone"), deployment=ours),
        "other-deployment": _job(
            "other-deployment", namespace, (dag_id, "train", run_id), deployment="elsewhere"
        ),
        "not-ours": _job("not-ours", namespace, None, deployment=None),
        "finished": _job("finished", namespace, (dag_id, "train", run_id), deployment=ours),
        "handed-off": _job(
            "handed-off",
            namespace,
            (dag_id, "train", run_id),
            deployment=ours,
            annotations={orphans.HANDED_OFF: "true"},
        ),
        "kept": _job(
            "kept",
            namespace,
            (dag_id, "train", run_id),
            deployment=ours,
            annotations={orphans.ON_KILL: "keep_tfjob"},
        ),
        "unknown-dag": _job(
            "unknown-dag", namespace, ("no_such_dag", "train", run_id), deployment=ours
        ),
    }
    hook = tfjob_hook(kubeconfig)
    uids = {name: hook.create(manifest)["metadata"]["uid"] for name, manifest in jobs.items()}
    for name in jobs:
        phase = "Succeeded" if name == "finished" else "Running"
        tfjobs.wait_for(kube_api, namespace, name, tfjobs.has(phase), timeout=60)

    reaped = run_dag(REAPER, namespace=namespace)
    assert task_instance(reaped, "reap").state == "success"
    result = task_instance(reaped, "reap").xcom_pull(task_ids="reap")
    out = capfd.readouterr().out
    assert sorted(result["deleted"]) == [f"{namespace}/run-gone", f"{namespace}/task-failed"]
    assert result["kept"] == [f"{namespace}/kept"]
    assert result["unknown_dags"] == ["no_such_dag"]
    assert result["checked"] == 6  # every job labelled with this deployment, and only those

    def left() -> dict[str, str]:
        return {j["metadata"]["name"]: j["metadata"]["uid"] for j in hook.list_jobs(namespace)[0]}

    eventually(lambda: not {"task-failed", "run-gone"} & set(left()), timeout=30)
    assert left() == {n: uids[n] for n in jobs if n not in {"task-failed", "run-gone"}}
    assert (
        f"Deleted orphaned TFJob {namespace}/task-failed (uid {uids['task-failed']}) of task "
        f"instance {dag_id}.train of run {run_id}: its task instance is failed; the job is "
        "still Running"
    ) in out
    assert (
        f"Deleted orphaned TFJob {namespace}/run-gone (uid {uids['run-gone']}) of task instance "
        f"{dag_id}.train of run manual__gone: its task instance no longer exists; the job is "
        "still Running"
    ) in out
    assert f"Keeping orphaned TFJob {namespace}/kept" in out
    assert "Not touching 1 TFJob(s) of DAG 'no_such_dag'" in out


def test_a_job_orphaned_only_at_first_sight_is_not_deleted(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    kube_api: kubernetes.client.ApiClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Within the grace period the job finishes: it is no orphan at the second reading."""
    from airflow_tfjob.operators import _settings

    connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}
    monkeypatch.setenv("AIRFLOW_CONN_K8S_REAPER_TEST", json.dumps(connection))
    failed = run_dag(FAILING_TASK)
    task = (failed.dag_id, "train", failed.run_id)
    replicas.set_fate("finishing", "Chief", 0, Fate(duration=4.0))
    hook = tfjob_hook(kubeconfig)
    hook.create(_job("finishing", namespace, task, deployment=_settings.deployment()))
    tfjobs.wait_for(kube_api, namespace, "finishing", tfjobs.has("Running"), timeout=60)
    reaped = run_dag(REAPER.replace("grace_seconds=1", "grace_seconds=8"), namespace=namespace)
    result = task_instance(reaped, "reap").xcom_pull(task_ids="reap")
    assert result["deleted"] == [] and result["checked"] == 1
    (job,) = hook.list_jobs(namespace)[0]
    assert tfjobs.has("Succeeded")(job)
