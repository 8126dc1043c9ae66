"""The example training DAG in a real deployment, deferred: the real training operator makes the
pods, the process kubelet runs each replica (real TensorFlow, MultiWorkerMirroredStrategy) in a
network namespace of its own, the triggerer follows the job and ends the task there, and the
downstream task reads the chief's result from XCom."""

from __future__ import annotations

import time
from pathlib import Path

from tests.kubelet.fates import REAL, Script
from tests.live.conftest import report
from tests.live.deployment import Deployment
from tests.live.jobs import worker_runs
from tests.live.rest import AirflowClient

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "example_tfjob_function.py"
DAG_ID = "live_example_tfjob_function"


def _deferred_example(dag_id: str = DAG_ID, conn_id: str = "kubernetes_default") -> str:
    """The example DAG, unchanged but for its id, ``deferrable=True`` and its connection."""
    source = EXAMPLE.read_text()
    assert source.count("@task.tfjob(") == 1 and source.count('"example_tfjob_function"') == 1
    arguments = f"@task.tfjob(\n        deferrable=True, kubernetes_conn_id={conn_id!r},"
    source = source.replace("@task.tfjob(", arguments, 1)
    return source.replace('"example_tfjob_function"', repr(dag_id), 1)


def test_the_example_dag_trains_across_pods_deferred_and_ends_in_the_triggerer(
    live: Deployment, live_api: AirflowClient, live_replicas: Script
) -> None:
    live_replicas.set_default_fate("*", REAL)
    live.add_dag_file(f"{DAG_ID}.py", _deferred_example())
    live_api.wait_for_dag(DAG_ID, timeout=120)
    began = time.monotonic()
    run_id = live_api.trigger(DAG_ID)
    run = live_api.wait_for_run(DAG_ID, run_id, timeout=900)
    seconds = time.monotonic() - began
    assert run["state"] == "success", live_api.task_log(DAG_ID, run_id, "train")[-3000:]
    result = live_api.xcom(DAG_ID, run_id, "train")
    assert result["replicas"] == 3 and result["accuracy"] > 0.9
    assert live_api.xcom(DAG_ID, run_id, "report").startswith("trained on 3 replicas")
    log = live_api.task_log(DAG_ID, run_id, "train")
    assert "the task ends here, in the triggerer" in log
    for replica in ("chief-0", "worker-0", "worker-1"):
        assert f"[{replica}] {replica}: 3 replicas in sync" in log
    assert worker_runs(live, run_id)[("train", -1)] == 1  # no worker resumed it
    report(f"example_tfjob_function deferred across pods: {seconds:.0f} s from trigger to success")


def test_the_example_dag_trains_through_a_trainjob_deferred_on_kubeflow_trainer_v2(
    live: Deployment, live_api: AirflowClient, live_replicas: Script
) -> None:
    """The same DAG on a connection whose ``tfjob_api`` is ``trainjob``: the worker submits a
    TrainJob on the TensorFlow runtime, the real Trainer v2 and JobSet controllers make the
    pods, and the triggerer follows it and ends the task with the same XCom."""
    dag_id = "live_example_tfjob_function_trainjob"
    live_replicas.set_default_fate("*", REAL)
    live.add_dag_file(f"{dag_id}.py", _deferred_example(dag_id, "kubernetes_trainjob"))
    live_api.wait_for_dag(dag_id, timeout=120)
    began = time.monotonic()
    run_id = live_api.trigger(dag_id)
    run = live_api.wait_for_run(dag_id, run_id, timeout=900)
    seconds = time.monotonic() - began
    log = live_api.task_log(dag_id, run_id, "train")
    assert run["state"] == "success", log[-3000:]
    result = live_api.xcom(dag_id, run_id, "train")
    assert result["replicas"] == 3 and result["accuracy"] > 0.9
    assert live_api.xcom(dag_id, run_id, "report").startswith("trained on 3 replicas")
    assert "Created TrainJob " in log and "the task ends here, in the triggerer" in log
    for replica in ("chief-0", "worker-0", "worker-1"):
        assert f"[{replica}] {replica}: 3 replicas in sync" in log
    assert worker_runs(live, run_id)[("train", -1)] == 1  # no worker resumed it
    report(f"example_tfjob_function deferred through a TrainJob: {seconds:.0f} s to success")
