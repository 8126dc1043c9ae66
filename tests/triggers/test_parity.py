"""The same scripted jobs through every way of following one (sync operator, deferred operator,
poke sensor, deferrable sensor, under ``dag.test()``) give the same XCom, the same failure text
and, where the task streams logs, the same log lines: the rules live once, in spec/follow.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from tests.airflow_fixtures import RESULT_KEYS, operator_body, task_instance, tfjob_hook
from tests.sim.fates import RUNS_FOR_EVER, Fate
from tests.sim.operator import Operator

SENSOR = """
from airflow_tfjob.sensors.tfjob import TFJobSensor
TFJobSensor(task_id="train", tfjob_name=JOB, namespace=NAMESPACE, kubernetes_conn_id=None,
            config_file=KUBECONFIG, poke_interval=1, deferrable=DEFERRABLE)
"""
MODES = ["sync", "deferred", "poke sensor", "deferrable sensor"]


def _run(
    mode: str, run_dag: Callable[..., Any], namespace: str, kubeconfig: Path, job: str, **more: Any
) -> Any:
    """Run the mode's task on job ``job`` (a sensor's job is created here, as by someone else)."""
    if mode.endswith("sensor"):
        manifest = TfJob(chief=Chief(), worker=Worker(replicas=2, **more)).to_manifest(
            job, namespace, image="tf:2"
        )
        tfjob_hook(kubeconfig).create(manifest)
        body = SENSOR
    else:
        workers = f"Worker(replicas=2, **{more!r})"
        body = operator_body(deferrable=mode == "deferred", name=job).replace(
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
    mode: str, run_dag: Callable[..., Any], simulator: Operator, namespace: str, kubeconfig: Path
) -> None:
    job = f"ok-{MODES.index(mode)}"
    simulator.set_fate(job, "Chief", 0, Fate(duration=2.0, message='{"auc": 0.9}'))
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
    simulator: Operator,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    job = f"bad-{MODES.index(mode)}"
    simulator.set_fate(job, "Chief", 0, RUNS_FOR_EVER)
    simulator.set_fate(job, "Worker", 1, Fate(duration=1.0, exit_code=3, message="shard 7 is bad"))
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
    simulator: Operator,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    job = f"restart-{mode}"
    simulator.set_fate(job, "Chief", 0, Fate(duration=6.0, message='{"ok": 1}'))
    simulator.set_fate(
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
