"""A task that is killed — SIGTERM (a user marks or kills it) or SIGKILL (the worker dies) —
leaves no replica and no replica's child behind, checked by PID."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.airflow_fixtures import LOGICAL_DATE, run_dag_file, start_dag_file, task_instance
from tests.local.conftest import LocalRuns, alive
from tests.waiting import eventually

JOB = "TfJob(chief=Chief(), worker=Worker(replicas=2))"
PLAN = {"worker-1": ["child", "sleep inf"], "*": ["sleep inf"]}


def _wait_for_replicas(local: LocalRuns, task: subprocess.Popen[bytes]) -> list[int]:
    expected = {"chief-0.1", "worker-0.1", "worker-1.1", "worker-1.1.child"}
    eventually(lambda: expected <= set(local.pids()) or task.poll() is not None, timeout=60)
    assert task.poll() is None, "the task ended before its replicas started"
    return local.all_pids()


def test_killing_the_task_stops_every_replica_and_their_children(
    local: LocalRuns, tmp_path: Path
) -> None:
    _, path = local.write(JOB, PLAN)
    task = start_dag_file(path, tmp_path / "task.log")
    try:
        pids = _wait_for_replicas(local, task)
        assert all(alive(pid) for pid in pids)
        os.kill(task.pid, signal.SIGTERM)  # what Airflow sends when a task is killed
        task.wait(timeout=60)
    finally:
        if task.poll() is None:
            os.killpg(task.pid, signal.SIGKILL)
    assert not [pid for pid in pids if alive(pid)]
    log = (tmp_path / "task.log").read_text()
    assert "was stopped: the task was killed" in log
    assert "Killed 1 processes the replicas left behind" in log  # the child in its own session


def test_a_task_killed_with_sigkill_takes_its_replicas_along_and_the_retry_sweeps_the_rest(
    local: LocalRuns, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _, path = local.write(JOB, {**PLAN, "*": {"1": ["sleep inf"], "*": ["sleep 1"]}})
    task = start_dag_file(path, tmp_path / "task.log")
    try:
        pids = _wait_for_replicas(local, task)
    finally:
        os.kill(task.pid, signal.SIGKILL)  # no handler runs: only the kernel can clean up
        task.wait()
    replicas = [p for stem, ps in local.pids().items() if "child" not in stem for p in ps]
    (child,) = local.pids()["worker-1.1.child"]
    eventually(lambda: not [pid for pid in replicas if alive(pid)], timeout=10)
    assert alive(child)  # its own session, not our child: PDEATHSIG cannot reach it

    dagrun = run_dag_file(path, LOGICAL_DATE)  # the task's next try
    assert task_instance(dagrun, "train").state == "success"
    assert "Killed 1 processes left by an earlier try" in capfd.readouterr().out
    assert not alive(child)
    assert not [pid for pid in pids if alive(pid)]
