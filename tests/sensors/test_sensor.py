"""TFJobSensor in poke and deferrable mode, through dag.test(), against the real API server."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.hooks.tfjob import TFJobHook
from tests.airflow_fixtures import task_instance
from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually

SENSOR = """
from airflow_tfjob.sensors.tfjob import TFJobSensor
TFJobSensor(
    task_id="wait",
    tfjob_name="{{{{ params.job }}}}",
    params={{"job": JOB}},
    namespace=NAMESPACE,
    kubernetes_conn_id=None,
    config_file=KUBECONFIG,
    poke_interval=1,
    deferrable={deferrable},
    {extra}
)
"""
MODES = [pytest.param(False, id="poke"), pytest.param(True, id="deferrable")]


def _create(kubeconfig: Path, name: str, namespace: str) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    hook.create(TfJob(chief=Chief(), worker=Worker()).to_manifest(name, namespace, image="tf:2"))


@pytest.mark.parametrize("deferrable", MODES)
def test_the_sensor_succeeds_with_the_final_status_in_xcom(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    deferrable: bool,
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0, message='{"acc": 0.9}'))
    _create(kubeconfig, "external", namespace)
    body = SENSOR.format(deferrable=deferrable, extra="")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), job="external")
    ti = task_instance(dagrun, "wait")
    assert ti.state == "success"
    result = ti.xcom_pull(task_ids="wait")
    assert result["name"] == "external" and result["state"] == "Succeeded"
    assert result["output"] == {"acc": 0.9}  # the chief's output, poked or deferred alike


@pytest.mark.parametrize("deferrable", MODES)
def test_the_sensor_fails_when_the_job_fails(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    deferrable: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=2.0, exit_code=1, message="diverged"))
    _create(kubeconfig, "doomed", namespace)
    dagrun = run_dag(
        SENSOR.format(deferrable=deferrable, extra=""),
        namespace=namespace,
        kubeconfig=str(kubeconfig),
        job="doomed",
    )
    assert task_instance(dagrun, "wait").state == "failed"
    out = capfd.readouterr().out
    assert f"TFJob {namespace}/doomed failed" in out
    # the failing replica and its cause, as the operator reports them
    assert "Failed replicas: chief-0 (exit code 1)" in out
    assert "chief-0 termination message: diverged" in out


@pytest.mark.parametrize("deferrable", MODES)
def test_the_sensor_times_out(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    deferrable: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))
    _create(kubeconfig, "endless", namespace)
    body = SENSOR.format(deferrable=deferrable, extra="timeout=4,")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), job="endless")
    assert task_instance(dagrun, "wait").state == "failed"
    out = capfd.readouterr().out
    assert "Timeout" in out or "timed out" in out
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    assert (
        hook.get("endless", namespace)["metadata"].get("deletionTimestamp") is None
    )  # not ours to delete


def test_a_deferred_sensors_timeout_counts_from_the_task_start(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    fault_proxy: FaultProxy,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Time spent waiting for the job to appear is part of the timeout: the deferral gets only
    what is left (found by the fault campaign, seed 11 run 35: a throttled API delayed the
    deferral, and the sensor outlived its timeout by that much)."""
    replicas.set_default_fate("Chief", Fate(exit_code=None))  # never reaches Succeeded
    kubeconfig = fault_proxy.kubeconfig
    created: list[float] = []

    def create_late() -> None:  # after the sensor has looked for it for a few seconds
        eventually(lambda: fault_proxy.requests(r"/tfjobs/late$", method="GET") >= 10, timeout=120)
        _create(kubeconfig, "late", namespace)
        created.append(time.monotonic())

    threading.Thread(target=create_late, daemon=True).start()
    body = SENSOR.format(deferrable=True, extra="timeout=12, missing_grace_seconds=600,")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), job="late")
    ended = time.monotonic()
    assert task_instance(dagrun, "wait").state == "failed"
    assert "did not reach Succeeded before the sensor's timeout" in capfd.readouterr().out
    assert created, "the job was never created"
    assert ended - created[0] < 11  # not a fresh 12 s from the deferral


@pytest.mark.parametrize("deferrable", MODES)
def test_a_throttled_api_does_not_stretch_the_sensors_timeout(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    fault_proxy: FaultProxy,
    deferrable: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A poke's own retries end at the sensor's timeout (found by the fault campaign on the real
    operator, seed 20261206 run 198: a poke retrying five 503s ran the task 6 s past it)."""
    replicas.set_default_fate("Chief", Fate(exit_code=None))
    kubeconfig = fault_proxy.kubeconfig
    _create(kubeconfig, "throttled", namespace)
    fault_proxy.throttle(r"/tfjobs/throttled$", retry_after=3, times=None, method="GET")
    body = SENSOR.format(deferrable=deferrable, extra="timeout=5,")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), job="throttled")
    ti = task_instance(dagrun, "wait")
    assert ti.state == "failed"
    out = capfd.readouterr().out
    assert "cannot read it now" in out  # the poke looked again rather than failing
    assert "Timeout" in out or "timeout" in out
    if deferrable:  # its deadline counts from the task instance's start
        took = (ti.end_date - ti.start_date).total_seconds()
    else:  # Airflow's own count, from the sensor's execute (dag.test starts the task before)
        took = float(re.search(r"run duration of ([\d.]+) seconds", out).group(1))  # type: ignore[union-attr]
    assert took < 5 + 3, f"the sensor ran {took:.1f} s with timeout=5:\n{out}"  # 9.1 s before


def test_a_deferred_sensor_times_out_while_the_job_is_still_missing(
    run_dag: Callable[..., Any],
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The timeout holds before the deferral too: not only missing_grace_seconds."""
    body = SENSOR.format(deferrable=True, extra="timeout=3, missing_grace_seconds=600,")
    started = time.monotonic()
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), job="not-yet")
    assert task_instance(dagrun, "wait").state == "failed"
    assert "did not reach Succeeded before the sensor's timeout" in capfd.readouterr().out
    assert time.monotonic() - started < 120  # not the 600 s grace


@pytest.mark.parametrize("deferrable", MODES)
def test_a_missing_job_fails_clearly_after_the_grace_period(
    run_dag: Callable[..., Any],
    namespace: str,
    kubeconfig: Path,
    deferrable: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    body = SENSOR.format(deferrable=deferrable, extra="missing_grace_seconds=2,")
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), job="never-created")
    assert task_instance(dagrun, "wait").state == "failed"
    assert f"TFJob {namespace}/never-created does not exist (waited" in capfd.readouterr().out


def test_a_job_deleted_while_poked_fails_the_sensor_at_once(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    fault_proxy: FaultProxy,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))  # runs until deleted
    kubeconfig = fault_proxy.kubeconfig
    _create(kubeconfig, "vanishing", namespace)
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))

    def delete_once_seen() -> None:  # after the sensor's first look at the job (a GET of it)
        eventually(
            lambda: fault_proxy.requests(r"/tfjobs/vanishing$", method="GET") > 0, timeout=120
        )
        hook.delete("vanishing", namespace, propagation="Background")

    deleter = threading.Thread(target=delete_once_seen, daemon=True)
    deleter.start()
    body = SENSOR.format(deferrable=False, extra="missing_grace_seconds=600,")
    started = time.monotonic()
    dagrun = run_dag(body, namespace=namespace, kubeconfig=str(kubeconfig), job="vanishing")
    assert task_instance(dagrun, "wait").state == "failed"
    assert f"TFJob {namespace}/vanishing was deleted while the task waited for it" in (
        capfd.readouterr().out
    )
    assert time.monotonic() - started < 120  # not the 600 s grace for a job not yet created


@pytest.mark.parametrize("deferrable", MODES)
def test_a_name_that_renders_invalid_fails_at_once_before_any_api_call(
    run_dag: Callable[..., Any],
    namespace: str,
    fault_proxy: FaultProxy,
    deferrable: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    extra = "retries=3, retry_delay=datetime.timedelta(seconds=1),"
    body = SENSOR.format(deferrable=deferrable, extra=extra)
    kubeconfig = str(fault_proxy.kubeconfig)
    dagrun = run_dag(body, namespace=namespace, kubeconfig=kubeconfig, job="Nightly_Run")
    ti = task_instance(dagrun, "wait")
    assert (ti.state, ti.try_number) == ("failed", 1)  # a retry would render the same name
    assert (
        "TFJobSpecFailure: tfjob_name: got 'Nightly_Run'; must be a DNS-1035 label"
        in capfd.readouterr().out
    )
    assert fault_proxy.requests("") == 0
