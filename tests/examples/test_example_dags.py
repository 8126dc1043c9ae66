"""Every example DAG under ``airflow dags test``: on the local backend with real TensorFlow, and
the training examples again on the Kubernetes path: the real training operator makes the pods,
the process kubelet runs each replica in a network namespace of its own, and TensorFlow trains
across them by the ``TF_CONFIG`` the operator wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from airflow_tfjob.demo import latest_xcom
from airflow_tfjob.rules import status
from tests.airflow_fixtures import tfjob_hook
from tests.kubelet.fates import REAL, Script
from tests.waiting import eventually

DAGS = Path(__file__).resolve().parents[2] / "dags"


def dags_test(dag_id: str, tmp_path: Path, **env: str) -> str:
    """Run ``airflow dags test DAG_ID`` on the repository's dags folder; its output."""
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run(
        [str(airflow), "dags", "test", dag_id],
        env={
            **os.environ,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__TFJOB__LOCAL_RUN_DIR": str(tmp_path / "runs"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=480,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "state=success" in output, output[-4000:]
    return output


def _local(dag_id: str, tmp_path: Path) -> str:
    return dags_test(dag_id, tmp_path, AIRFLOW__TFJOB__BACKEND="local")


def _trained_on_three_replicas(output: str) -> None:
    """What example_tfjob_function's run must show, whichever backend ran it."""
    result: dict[str, Any] = latest_xcom("example_tfjob_function", "train")
    assert result["replicas"] == 3 and result["steps"] == 200
    assert result["accuracy"] > 0.9 and result["loss"] < 0.3
    for replica in ("chief-0", "worker-0", "worker-1"):
        assert f"[{replica}] {replica}: 3 replicas in sync" in output
    assert latest_xcom("example_tfjob_function", "report").startswith("trained on 3 replicas")


def test_example_tfjob_function_trains_on_three_local_replicas(
    airflow_db: Path, tmp_path: Path
) -> None:
    _trained_on_three_replicas(_local("example_tfjob_function", tmp_path))


def test_example_tfjob_ps_trains_with_a_parameter_server(airflow_db: Path, tmp_path: Path) -> None:
    output = _local("example_tfjob_ps", tmp_path)
    result = latest_xcom("example_tfjob_ps", "train_ps")
    assert result["accuracy"] > 0.9
    assert "Stopping worker-0, ps-0, still running (cleanPodPolicy Running)" in output


def test_example_tfjob_operator_runs_the_training_script(airflow_db: Path, tmp_path: Path) -> None:
    output = _local("example_tfjob_operator", tmp_path)
    result = latest_xcom("example_tfjob_operator", "train")
    assert result["state"] == "Succeeded"
    assert result["output"]["slope"] == pytest.approx(3.0, abs=0.01)
    assert result["output"]["intercept"] == pytest.approx(-1.0, abs=0.01)
    assert "[worker-1] step 100: loss" in output


def _on_cluster(
    dag_id: str, tmp_path: Path, namespace: str, kubeconfig: Path, replicas: Script,
    api: str = "tfjob",
) -> str:  # fmt: skip
    """``airflow dags test`` with ``[tfjob] backend = kubernetes`` against the test cluster,
    every replica running its real command; ``api``: the connection's ``tfjob_api``."""
    replicas.set_default_fate("*", REAL)
    connection = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kubeconfig), "namespace": namespace, "tfjob_api": api},
    }
    return dags_test(
        dag_id, tmp_path, AIRFLOW__TFJOB__BACKEND="kubernetes",
        AIRFLOW_CONN_KUBERNETES_DEFAULT=json.dumps(connection),
    )  # fmt: skip


def test_example_tfjob_function_trains_across_pods_through_the_training_operator(
    airflow_db: Path, replicas: Script, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    _trained_on_three_replicas(
        _on_cluster("example_tfjob_function", tmp_path, namespace, kubeconfig, replicas)
    )


def test_example_tfjob_ps_trains_across_pods_with_a_parameter_server(
    airflow_db: Path, replicas: Script, namespace: str, kubeconfig: Path, tmp_path: Path,
    kube_api: Any,
) -> None:  # fmt: skip
    _on_cluster("example_tfjob_ps", tmp_path, namespace, kubeconfig, replicas)
    result = latest_xcom("example_tfjob_ps", "train_ps")
    assert result["accuracy"] > 0.9
    # the PS never exits: the job succeeded on the chief, and nothing of it is left running
    core = kubernetes.client.CoreV1Api(kube_api)
    eventually(lambda: not core.list_namespaced_pod(namespace).items, timeout=60)


def _trainjobs(kube_api: Any, namespace: str) -> list[dict[str, Any]]:
    listing = kubernetes.client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "trainer.kubeflow.org", "v1alpha1", namespace, "trainjobs"
    )
    return list(listing["items"])


def test_example_tfjob_function_trains_across_pods_through_a_trainjob(
    airflow_db: Path, replicas: Script, namespace: str, kubeconfig: Path, tmp_path: Path,
    kube_api: Any,
) -> None:  # fmt: skip
    """The same DAG, unchanged, on Kubeflow Trainer v2: a TrainJob on the TensorFlow runtime,
    JobSet's pods, and the TF_CONFIG the entry point wrote; the same XCom."""
    output = _on_cluster(
        "example_tfjob_function", tmp_path, namespace, kubeconfig, replicas, api="trainjob"
    )
    _trained_on_three_replicas(output)
    assert f"Created TrainJob {namespace}/example-tfjob-function-train-" in output
    assert not _trainjobs(kube_api, namespace)  # succeeded, so deleted (on_finish_action)
    assert not kubernetes.client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "kubeflow.org", "v1", namespace, "tfjobs"
    )["items"]  # no TFJob: the TrainJob did it


def test_example_tfjob_ps_trains_across_pods_with_a_parameter_server_through_a_trainjob(
    airflow_db: Path, replicas: Script, namespace: str, kubeconfig: Path, tmp_path: Path,
    kube_api: Any,
) -> None:  # fmt: skip
    output = _on_cluster(
        "example_tfjob_ps", tmp_path, namespace, kubeconfig, replicas, api="trainjob"
    )
    assert f"Created TrainJob {namespace}/example-tfjob-ps-train-ps-" in output
    assert "[ps-0]" in output  # the PS's log, read as a TFJob's
    result = latest_xcom("example_tfjob_ps", "train_ps")
    assert result["accuracy"] > 0.9
    # the PS never exits: the Job succeeded on index 0, the chief, and stopped the PS
    core = kubernetes.client.CoreV1Api(kube_api)
    eventually(
        lambda: not [p for p in core.list_namespaced_pod(namespace).items
                     if p.status.phase in ("Pending", "Running")],
        timeout=60,
    )  # fmt: skip


def test_example_tfjob_sensor_waits_for_the_submitted_job(
    airflow_db: Path, replicas: Script, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    connection = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kubeconfig), "namespace": namespace},
    }
    dags_test(
        "example_tfjob_sensor", tmp_path, AIRFLOW_CONN_KUBERNETES_DEFAULT=json.dumps(connection)
    )
    submitted = latest_xcom("example_tfjob_sensor", "submit")
    assert submitted["state"] == "Submitted" and submitted["namespace"] == namespace
    (job,) = tfjob_hook(kubeconfig).list_jobs(namespace)[0]  # kept: on_finish_action keep_tfjob
    assert job["metadata"]["uid"] == submitted["uid"]
    assert status.job_state(job).phase == "Succeeded"  # what the sensor waited for


def test_example_tfjob_reaper_runs_against_the_cluster(
    airflow_db: Path, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    connection = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kubeconfig), "namespace": namespace},
    }
    output = dags_test(
        "tfjob_reaper", tmp_path, AIRFLOW_CONN_KUBERNETES_DEFAULT=json.dumps(connection)
    )
    assert latest_xcom("tfjob_reaper", "reap") == {
        "checked": 0,
        "deleted": [],
        "kept": [],
        "unknown_dags": [],
    }
    assert "0 TFJobs of deployment 'localhost-8080', 0 orphaned at first sight" in output


class _ByAsset:
    """``triggering_asset_events`` as the task sees it: the events of one asset, by the asset."""

    def __init__(self, asset: Any, events: list[Any]) -> None:
        self.asset, self.events = asset, events

    def __getitem__(self, key: Any) -> list[Any]:
        assert key == self.asset, f"the task asked for the events of {key!r}"
        return self.events


def test_example_tfjob_asset_watcher_registers_each_job_that_triggered_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The watcher's arguments come from the environment; the task reads the events' payloads
    (the live tier runs the pattern end to end: tests/live/test_events.py)."""
    import runpy
    from types import SimpleNamespace

    from airflow_tfjob.triggers.events import TFJobEventTrigger

    monkeypatch.setenv("TFJOB_EXAMPLE_NAMESPACE", "ml")
    monkeypatch.setenv("TFJOB_EXAMPLE_SELECTOR", "team=vision")
    module = runpy.run_path(str(DAGS / "example_tfjob_asset_watcher.py"))
    asset, dag = module["trained_models"], module["dag"]
    assert dag.dag_id == "example_tfjob_asset_watcher"
    trigger = asset.watchers[0].trigger
    assert isinstance(trigger, TFJobEventTrigger)
    assert (trigger.namespace, trigger.label_selector, trigger.phases) == (
        "ml",
        "team=vision",
        ["Succeeded"],
    )
    payloads = [
        {"namespace": "ml", "name": n, "uid": f"u-{n}", "phase": "Succeeded",
         "completion_time": "2026-12-05T10:00:00Z", "output": {"auc": a}}
        for n, a in (("nb-1", 0.91), ("ci-7", 0.88))
    ]  # fmt: skip
    found = [SimpleNamespace(extra={"payload": p}) for p in payloads]
    found.insert(1, SimpleNamespace(extra={"airflow_tfjob_catch_up": {"events": [7]}}))
    # Airflow's accessor is looked up by the asset (3.1's Asset is not hashable: no plain dict).
    events = _ByAsset(asset, found)
    assert dag.get_task("catch_up").upstream_task_ids == {"register"}
    register = dag.get_task("register").python_callable  # type: ignore[attr-defined]
    assert register(triggering_asset_events=events) == [
        {"tfjob": "nb-1", "uid": "u-nb-1", "output": {"auc": 0.91}},
        {"tfjob": "ci-7", "uid": "u-ci-7", "output": {"auc": 0.88}},
    ]
    assert "Registering the model of TFJob ml/ci-7 (uid u-ci-7" in capsys.readouterr().out
