"""The TrainJob path (``TFJobOperator(api="trainjob")``, Kubeflow Trainer v2.3.0 and JobSet
v0.12.0) through real Airflow against the test cluster's real controllers: what the TFJob path's
tests prove (test_operator_kubernetes, test_operator_lifecycle, test_reaper), proven again on a
TrainJob. Every replica is scripted (tests/kubelet/fates.py), keyed by TF replica type and
index as on the TFJob path, so each test takes seconds."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.model import naming
from airflow_tfjob.rules.trainjob import DERIVED_NAME_MAX
from tests.airflow_fixtures import (
    LOGICAL_DATE,
    operator_body,
    run_dag_file,
    start_dag_file,
    task_instance,
    tfjob_hook,
    write_dag,
)
from tests.kubelet.fates import RUNS_FOR_EVER, Fate, Script
from tests.operators.test_operator_lifecycle import cluster_pods
from tests.waiting import eventually

RUN_ID = f"manual__{LOGICAL_DATE.isoformat()}"

MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferred")]


def trainjob_hook(kubeconfig: Path) -> Any:
    """A ``TFJobHook`` for TrainJobs on a kubeconfig file, without an Airflow connection."""
    from airflow_tfjob.hooks.tfjob import TFJobHook

    return TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig), api="trainjob")


def _trainjobs(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    return list(trainjob_hook(kubeconfig).list_jobs(namespace)[0])


def _no_tfjob(kubeconfig: Path, namespace: str) -> None:
    assert tfjob_hook(kubeconfig).list_jobs(namespace)[0] == []  # the TrainJob did it all


@pytest.mark.parametrize("deferrable", MODES)
def test_a_trainjob_returns_the_chiefs_output_through_xcom_with_each_replicas_log(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    replicas.set_default_fate(
        "Chief", Fate(duration=1.0, message='{"accuracy": 0.93}', logs=["epoch 1", "saved model"])
    )
    replicas.set_default_fate("Worker", Fate(duration=0.3, logs=["worker step 1"]))
    dagrun = run_dag(
        operator_body(api="trainjob", on_finish_action="keep_tfjob", deferrable=deferrable),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    ti = task_instance(dagrun, "train")
    out = capfd.readouterr().out
    assert ti.state == "success", out[-3000:]
    result = ti.xcom_pull(task_ids="train")
    assert result["state"] == "Succeeded"
    assert result["output"] == {"accuracy": 0.93}
    assert result["namespace"] == namespace and result["uid"]
    assert result["replica_statuses"]["Chief"]["succeeded"] == 1
    assert ti.xcom_pull(task_ids="train", key="tfjob_name") == result["name"]
    assert f"Created TrainJob {namespace}/{result['name']} " in out
    assert "[chief-0] epoch 1" in out and "[chief-0] saved model" in out
    assert "[worker-0] worker step 1" in out and "[worker-1] worker step 1" in out
    assert ("Pausing task as DEFERRED" in out) == deferrable
    (job,) = _trainjobs(kubeconfig, namespace)  # kept: on_finish_action keep_tfjob
    assert (job["metadata"]["name"], job["metadata"]["uid"]) == (result["name"], result["uid"])
    _no_tfjob(kubeconfig, namespace)


@pytest.mark.parametrize("deferrable", MODES)
def test_a_failed_trainjob_names_the_replica_its_exit_code_and_message(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0))
    replicas.set_fate(
        "failing", "Worker", 1, Fate(duration=0.3, exit_code=3, message="OOM in step 12")
    )
    dagrun = run_dag(
        operator_body(api="trainjob", name="failing", deferrable=deferrable),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    out = capfd.readouterr().out
    assert task_instance(dagrun, "train").state == "failed"
    assert f"TFJob {namespace}/failing failed: " in out
    assert "Failed replicas: worker-1 (exit code 3)" in out
    assert "worker-1 termination message: OOM in step 12" in out
    (job,) = _trainjobs(kubeconfig, namespace)  # a failed job is kept (delete_succeeded_tfjob)
    assert job["metadata"]["name"] == "failing"


@pytest.mark.parametrize("deferrable", MODES)
def test_execution_timeout_deletes_the_trainjob_and_fails_saying_so(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    replicas.set_default_fate("Chief", RUNS_FOR_EVER)
    extra = "execution_timeout=datetime.timedelta(seconds=8),"
    dagrun = run_dag(
        operator_body(extra, api="trainjob", on_finish_action="keep_tfjob", deferrable=deferrable),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    out = capfd.readouterr().out
    ti = task_instance(dagrun, "train")
    assert ti.state == "failed"
    assert "did not finish before the task's execution_timeout (Running); it was deleted" in out
    assert _trainjobs(kubeconfig, namespace) == []
    _gone_without_a_rerun(replicas, kubeconfig, namespace, ti.xcom_pull(key="tfjob_name"))


def test_active_deadline_seconds_ends_the_trainjob_and_fails_saying_so(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", RUNS_FOR_EVER)
    body = """
    TFJobOperator(task_id="train", api="trainjob", image="tf:2", namespace=NAMESPACE,
                  tfjob=TfJob(chief=Chief(), worker=Worker(), run_policy=RunPolicy(active_deadline_seconds=3)),
                  kubernetes_conn_id=None, config_file=KUBECONFIG, poll_interval=1)
    """
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    out = capfd.readouterr().out
    assert task_instance(dagrun, "train").state == "failed"
    assert "failed: DeadlineExceeded: TrainJob exceeded its active deadline" in out  # Trainer's


def test_killing_the_task_deletes_the_trainjob(
    airflow_db: Path, replicas: Script, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    replicas.set_default_fate("Chief", RUNS_FOR_EVER)
    dag_id, path = write_dag(
        airflow_db,
        operator_body(api="trainjob", on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    worker = start_dag_file(path, tmp_path / "killed.log")
    try:
        eventually(lambda: _running(kubeconfig, namespace), timeout=60)
        os.kill(worker.pid, signal.SIGTERM)  # what Airflow sends when a user kills the task
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert _trainjobs(kubeconfig, namespace) == []
    assert "Deleted TFJob" in (tmp_path / "killed.log").read_text()
    name = naming.job_name(dag_id, "train", RUN_ID, -1, limit=DERIVED_NAME_MAX)
    _gone_without_a_rerun(replicas, kubeconfig, namespace, name)


def test_a_409_from_an_earlier_try_adopts_the_trainjob(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=1.5, message='{"loss": 0.1}'))
    dag_id, path = write_dag(
        airflow_db,
        operator_body(api="trainjob", on_finish_action="keep_tfjob"),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    name = naming.job_name(dag_id, "train", RUN_ID, -1, limit=DERIVED_NAME_MAX)
    labels = naming.task_labels(dag_id, "train", RUN_ID, -1, 1)
    earlier = trainjob_hook(kubeconfig).create(
        TfJob(chief=Chief(), worker=Worker(replicas=2)).to_manifest(
            name, namespace, image="tf:2", labels=labels
        )
    )  # the first try's job; that try's worker died
    dagrun = run_dag_file(path, LOGICAL_DATE)
    ti = task_instance(dagrun, "train")
    out = capfd.readouterr().out
    assert ti.state == "success"
    assert f"Adopting TFJob {namespace}/{name} (uid {earlier['metadata']['uid']}" in out
    assert "Created TrainJob" not in out
    (only,) = _trainjobs(kubeconfig, namespace)
    assert only["metadata"]["uid"] == earlier["metadata"]["uid"]
    assert ti.xcom_pull(task_ids="train")["output"] == {"loss": 0.1}
    _no_tfjob(kubeconfig, namespace)


def _runs(replicas: Script, name: str) -> dict[str, int]:
    """Container starts of job ``name``'s replicas, per type (the process kubelet counts)."""
    out: dict[str, int] = {}
    for (job, rtype, _), runs in replicas.runs.items():
        if job == name:
            out[rtype] = out.get(rtype, 0) + runs
    return out


def _gone_without_a_rerun(replicas: Script, kubeconfig: Path, namespace: str, name: str) -> None:
    """The deleted TrainJob's pods go, and none was started again: Trainer v2.3.0 recreates
    the JobSet of a TrainJob deleted in the foreground until the garbage collector wins.
    (In a fresh cluster the collector follows TrainJobs and JobSets only after its first
    discovery resync, up to 30 s after they are installed: hence the long timeout.)"""
    eventually(lambda: cluster_pods(kubeconfig, namespace) == [], timeout=60)
    assert _runs(replicas, name) == {"chief": 1, "worker": 2}


def _running(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    """The TrainJobs whose replicas run (as a TFJob's ``Running`` condition)."""
    from airflow_tfjob.rules import status

    jobs = _trainjobs(kubeconfig, namespace)
    return [j for j in jobs if status.job_state(j).phase == "Running"]


def test_a_retry_replaces_the_trainjob_its_failed_try_left(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The failed try's TrainJob is kept (delete_succeeded_tfjob); the retry deletes it, waits
    until its JobSet's pods are gone and runs its own."""
    dag_id, path = write_dag(
        airflow_db, operator_body(api="trainjob"), namespace=namespace, kubeconfig=str(kubeconfig)
    )
    name = naming.job_name(dag_id, "train", RUN_ID, -1, limit=DERIVED_NAME_MAX)
    replicas.set_fate(name, "Worker", 1, Fate(duration=0.3, exit_code=3, message="OOM"))
    first = task_instance(run_dag_file(path, LOGICAL_DATE), "train")
    assert first.state == "failed"
    (failed,) = _trainjobs(kubeconfig, namespace)
    replicas.set_fate(name, "Worker", 1, Fate(duration=0.3))
    replicas.set_default_fate("Chief", Fate(duration=0.5, message='{"try": 2}'))
    capfd.readouterr()

    retry = task_instance(run_dag_file(path, LOGICAL_DATE), "train")

    out = capfd.readouterr().out
    assert retry.state == "success", out[-3000:]
    assert f"Replacing TFJob {namespace}/{name} (uid {failed['metadata']['uid']}, " in out
    assert f"Created TrainJob {namespace}/{name} " in out
    result = retry.xcom_pull(task_ids="train")
    assert result["output"] == {"try": 2} and result["uid"] != failed["metadata"]["uid"]
    assert _runs(replicas, name) == {"chief": 2, "worker": 4}  # one per try: none rerun


def test_a_trainjob_gets_no_deadline_backstop_so_a_retry_adopting_it_runs_to_its_end(
    airflow_db: Path,
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A TrainJob's activeDeadlineSeconds is immutable (Trainer v2.3.0), so a backstop sized for
    the try that created it would end the retry that adopts it: none is set (the reaper is the
    net), and a retry adopting the running job follows it to its end."""
    replicas.set_default_fate("Chief", Fate(duration=4.0, message='{"loss": 0.3}'))
    dag_id, path = write_dag(
        airflow_db,
        operator_body(
            "execution_timeout=datetime.timedelta(seconds=40),",
            api="trainjob",
            on_finish_action="keep_tfjob",
        ),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
    )
    hook = trainjob_hook(kubeconfig)
    name = naming.job_name(dag_id, "train", RUN_ID, -1, limit=DERIVED_NAME_MAX)
    manifest = TfJob(chief=Chief(), worker=Worker()).to_manifest(
        name, namespace, image="tf:2", labels=naming.task_labels(dag_id, "train", RUN_ID, -1, 1)
    )
    first = hook.create(manifest)  # as the first try made it; that try's worker then died
    eventually(lambda: _running(kubeconfig, namespace))

    ti = task_instance(run_dag_file(path, LOGICAL_DATE), "train")  # the retry adopts the job

    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="train")["output"] == {"loss": 0.3}
    job = hook.get(name, namespace)
    assert job["metadata"]["uid"] == first["metadata"]["uid"]
    assert "activeDeadlineSeconds" not in job["spec"]["runPolicy"]  # no backstop
    assert "raising runPolicy.activeDeadlineSeconds" not in capfd.readouterr().out


TWO_TASKS = """
from airflow.sdk import task

@task
def train():
    raise ValueError("the task fails; its job would run on")

@task
def evaluate():
    pass

train()
evaluate()
"""


def test_the_reaper_deletes_an_orphaned_trainjob_and_leaves_a_live_one(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The connection sets no ``tfjob_api``: the reaper reads both APIs (``served_hooks``)."""
    from airflow_tfjob.operators import _settings
    from tests.operators.test_reaper import REAPER, _job

    connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}
    monkeypatch.setenv("AIRFLOW_CONN_K8S_REAPER_TEST", json.dumps(connection))
    ended = run_dag(TWO_TASKS)  # train failed; evaluate will read as running (below)
    dag_id, run_id, ours = ended.dag_id, ended.run_id, _settings.deployment()
    assert task_instance(ended, "train").state == "failed"
    _set_state(task_instance(ended, "evaluate"), "running")
    replicas.set_default_fate("*", RUNS_FOR_EVER)
    replicas.set_fate("done", "Chief", 0, Fate(duration=0.1))
    made = {
        "orphan": _job("orphan", namespace, (dag_id, "train", run_id), deployment=ours),
        "live": _job("live", namespace, (dag_id, "evaluate", run_id), deployment=ours),
        "done": _job("done", namespace, (dag_id, "train", run_id), deployment=ours),
    }
    hook = trainjob_hook(kubeconfig)
    uids = {name: hook.create(manifest)["metadata"]["uid"] for name, manifest in made.items()}
    eventually(lambda: len(_running(kubeconfig, namespace)) == 2, timeout=60)
    eventually(lambda: _phase(kubeconfig, "done", namespace) == "Succeeded", timeout=60)

    reaped = run_dag(REAPER, namespace=namespace)

    result = task_instance(reaped, "reap").xcom_pull(task_ids="reap")
    out = capfd.readouterr().out
    assert result["deleted"] == [f"{namespace}/orphan"] and result["checked"] == 3
    assert (
        f"Deleted orphaned TFJob {namespace}/orphan (uid {uids['orphan']}) of task instance "
        f"{dag_id}.train of run {run_id}: its task instance is failed; the job is still Running"
    ) in out
    left = {j["metadata"]["name"]: j["metadata"]["uid"] for j in _trainjobs(kubeconfig, namespace)}
    assert left == {"live": uids["live"], "done": uids["done"]}
    assert _phase(kubeconfig, "live", namespace) == "Running"
    eventually(lambda: not [p for p in cluster_pods(kubeconfig, namespace) if "orphan" in p])


SENSOR = """
from airflow_tfjob.sensors.tfjob import TFJobSensor
TFJobSensor(task_id="wait", tfjob_name="external", namespace=NAMESPACE, api="trainjob",
            kubernetes_conn_id=None, config_file=KUBECONFIG, poke_interval=1, deferrable={})
"""


@pytest.mark.parametrize(
    "deferrable", [pytest.param(False, id="poke"), pytest.param(True, id="deferrable")]
)
def test_a_sensor_waits_for_a_trainjob_and_returns_its_chiefs_output(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    deferrable: bool,
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=2.0, message='{"acc": 0.9}'))
    trainjob_hook(kubeconfig).create(
        TfJob(chief=Chief(), worker=Worker()).to_manifest("external", namespace, image="tf:2")
    )
    dagrun = run_dag(SENSOR.format(deferrable), namespace=namespace, kubeconfig=str(kubeconfig))
    ti = task_instance(dagrun, "wait")
    assert ti.state == "success"
    result = ti.xcom_pull(task_ids="wait")
    assert (result["name"], result["state"]) == ("external", "Succeeded")
    assert result["output"] == {"acc": 0.9}


def _phase(kubeconfig: Path, name: str, namespace: str) -> str:
    from airflow_tfjob.rules import status

    return status.job_state(trainjob_hook(kubeconfig).get(name, namespace)).phase


def _set_state(ti: Any, state: str) -> None:
    """A task instance's state in the metadata DB (what Airflow reports to the reaper)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(TaskInstance).where(TaskInstance.id == ti.id).values(state=state))
