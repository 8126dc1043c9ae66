"""The same scripted jobs through every way of following one (sync operator, deferred operator,
poke sensor, deferrable sensor, under ``dag.test()``) give the same XCom, the same failure text
and, where the task streams logs, the same log lines: the rules live once, in rules/follow.py, and
the operator's two modes run one follower (backends/kubernetes/follower.py).

Scripted: a success with output, a failure with a termination message, an in-place restart
mid-log, a start-up timeout (the operator's own limit), a deadline (the task's execution_timeout
or the sensor's timeout) and a deletion by someone else."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.errors import TFJobNotFound
from airflow_tfjob.rules import status
from tests.airflow_fixtures import RESULT_KEYS, operator_body, task_instance, tfjob_hook
from tests.kubelet.fates import RUNS_FOR_EVER, Fate, Script
from tests.waiting import eventually

SENSOR = """
from airflow_tfjob.sensors.tfjob import TFJobSensor
TFJobSensor(task_id="train", tfjob_name=JOB, namespace=NAMESPACE, kubernetes_conn_id=None,
            config_file=KUBECONFIG, poke_interval=1, deferrable=DEFERRABLE)
"""
MODES = ["sync", "deferred", "poke sensor", "deferrable sensor"]


def _run(
    mode: str,
    run_dag: Callable[..., Any],
    namespace: str,
    kubeconfig: Path,
    job: str,
    *,
    operator_code: str = "",
    sensor_code: str = "",
    **more: Any,
) -> Any:
    """Run the mode's task on job ``job`` (a sensor's job is created here, as by someone else),
    with ``more`` for its workers and ``*_code`` as more arguments of the task."""
    if mode.endswith("sensor"):
        manifest = TfJob(chief=Chief(), worker=Worker(replicas=2, **more)).to_manifest(
            job, namespace, image="tf:2"
        )
        tfjob_hook(kubeconfig).create(manifest)
        body = SENSOR.replace("deferrable=DEFERRABLE)", f"deferrable=DEFERRABLE, {sensor_code})")
    else:
        workers = f"Worker(replicas=2, **{more!r})"
        body = operator_body(operator_code, deferrable=mode == "deferred", name=job).replace(
            "Worker(replicas=2)", workers
        )
    dagrun = run_dag(
        body,
        namespace=namespace,
        kubeconfig=str(kubeconfig),
        job=job,
        deferrable=mode == "deferrable sensor",
    )
    return task_instance(dagrun, "train")


@pytest.mark.parametrize("mode", MODES)
def test_a_success_gives_the_same_xcom(
    mode: str, run_dag: Callable[..., Any], replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    job = f"ok-{MODES.index(mode)}"
    replicas.set_fate(job, "Chief", 0, Fate(duration=2.0, message='{"auc": 0.9}'))
    ti = _run(mode, run_dag, namespace, kubeconfig, job)
    assert ti.state == "success"
    result = ti.xcom_pull(task_ids="train")
    assert set(result) == RESULT_KEYS
    assert (result["name"], result["state"], result["output"]) == (job, "Succeeded", {"auc": 0.9})
    assert [c["type"] for c in result["conditions"]][-1] == "Succeeded"


@pytest.mark.parametrize("mode", MODES)
def test_a_failure_gives_the_same_report(
    mode: str,
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    job = f"bad-{MODES.index(mode)}"
    replicas.set_fate(job, "Chief", 0, RUNS_FOR_EVER)
    replicas.set_fate(job, "Worker", 1, Fate(duration=1.0, exit_code=3, message="shard 7 is bad"))
    ti = _run(mode, run_dag, namespace, kubeconfig, job)
    assert ti.state == "failed"
    out = capfd.readouterr().out
    where = f"{namespace}/{job}"
    assert f"TFJob {where} failed: TFJobFailed: TFJob {where} has failed because 1 Worker replica(s) failed." in out, out[-3000:]  # fmt: skip
    assert "Failed replicas: worker-1 (exit code 3)" in out
    assert "worker-1 termination message: shard 7 is bad" in out


@pytest.mark.parametrize("mode", ["sync", "deferred"])
def test_a_container_restarted_in_place_is_followed_again_no_line_lost_or_repeated(
    mode: str,
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    job = f"restart-{mode}"
    replicas.set_fate(job, "Chief", 0, Fate(duration=6.0, message='{"ok": 1}'))
    replicas.set_fate(
        job,
        "Worker",
        0,
        Fate(duration=0.5, exit_code=1, logs=["epoch 1", "loss nan: crashing"]),
        Fate(duration=2.0, logs=["resumed from checkpoint", "epoch 2"]),
    )
    ti = _run(mode, run_dag, namespace, kubeconfig, job, restart_policy="OnFailure")
    assert ti.state == "success"
    out = capfd.readouterr().out
    lines = re.findall(r"\[worker-0\] (epoch \d|loss nan: crashing|resumed from checkpoint)", out)
    assert lines == ["epoch 1", "loss nan: crashing", "resumed from checkpoint", "epoch 2"], lines


@pytest.mark.parametrize("mode", ["sync", "deferred"])
def test_a_startup_timeout_gives_the_same_report_and_deletes_the_job(
    mode: str,
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    job = f"late-{mode}"
    for rtype, index in (("Chief", 0), ("Worker", 0), ("Worker", 1)):
        replicas.set_fate(job, rtype, index, Fate(never_starts=True))
    body = operator_body(deferrable=mode == "deferred", name=job, startup_timeout_seconds=3)
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig))
    assert task_instance(dagrun, "train").state == "failed"
    out = capfd.readouterr().out
    expected = (
        f"no replica of TFJob {namespace}/{job} started within 3 s (startup_timeout_seconds); "
        "the job was deleted. Waiting: chief-0: ContainerCreating; worker-0: ContainerCreating; "
        "worker-1: ContainerCreating"
    )
    assert expected in out, out[-3000:]
    _gone(kubeconfig, namespace, job)


@pytest.mark.parametrize("mode", MODES)
def test_a_deadline_gives_the_same_report(
    mode: str,
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The task's execution_timeout deletes its own job; a sensor's timeout only stops it."""
    job = f"slow-{MODES.index(mode)}"
    replicas.set_fate(job, "Chief", 0, RUNS_FOR_EVER)
    timeout = "__import__('datetime').timedelta(seconds=12)"
    ti = _run(
        mode,
        run_dag,
        namespace,
        kubeconfig,
        job,
        operator_code=f"execution_timeout={timeout},",
        sensor_code="timeout=10,",
    )
    assert ti.state == "failed"
    out, where = capfd.readouterr().out, f"{namespace}/{job}"
    if mode.endswith("sensor"):
        expected = f"TFJob {where} did not reach Succeeded before the sensor's timeout (Running)"
        assert expected in out, out[-3000:]
        assert tfjob_hook(kubeconfig).get(job, namespace)["metadata"]["name"] == job
    else:
        expected = (
            f"TFJob {where} did not finish before the task's execution_timeout (Running); "
            "it was deleted"
        )
        assert expected in out, out[-3000:]
        _gone(kubeconfig, namespace, job)


@pytest.mark.parametrize("mode", MODES)
def test_a_deletion_gives_the_same_report(
    mode: str,
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    job = f"gone-{MODES.index(mode)}"
    replicas.set_fate(job, "Chief", 0, RUNS_FOR_EVER)
    hook = tfjob_hook(kubeconfig)

    def delete_once_running() -> None:
        def running() -> bool:
            try:
                return bool(status.job_state(hook.get(job, namespace)).phase == "Running")
            except TFJobNotFound:
                return False

        eventually(running, timeout=120)
        time.sleep(2)  # the task is following it by now
        hook.delete(job, namespace)

    threading.Thread(target=delete_once_running, daemon=True).start()
    ti = _run(mode, run_dag, namespace, kubeconfig, job)
    assert ti.state == "failed"
    out = capfd.readouterr().out
    assert f"TFJob {namespace}/{job} was deleted while the task waited for it" in out, out[-3000:]


def _gone(kubeconfig: Path, namespace: str, job: str) -> None:
    def gone() -> bool:
        try:
            tfjob_hook(kubeconfig).get(job, namespace)
        except TFJobNotFound:
            return True
        return False

    eventually(gone, timeout=60)
