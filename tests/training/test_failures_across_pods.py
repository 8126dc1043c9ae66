"""Failure for real on the Kubernetes path: replicas are real processes in pods the real training
operator made, and what happens to them is what happens to a process (a SIGKILL, an exception),
not a status somebody wrote."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_fixtures import task_instance
from tests.kubelet.fates import REAL, Script

RESUMING = r"""
import json, os, sys, time
import tensorflow as tf

folder = os.environ["CHECKPOINTS"]
step = tf.Variable(0)
weight = tf.Variable(0.0)
checkpoint = tf.train.Checkpoint(step=step, weight=weight)
manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=2)
if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint)
    print(f"resumed from step {int(step.numpy())}", flush=True)
with open(os.path.join(folder, "pid"), "w") as out:
    out.write(str(os.getpid()))
optimizer = tf.keras.optimizers.SGD(0.1)
while int(step.numpy()) < 60:
    with tf.GradientTape() as tape:
        loss = (weight - 3.0) ** 2
    optimizer.apply_gradients([(tape.gradient(loss, weight), weight)])
    step.assign_add(1)
    if int(step.numpy()) % 10 == 0:
        manager.save()
        print(f"step {int(step.numpy())} loss {float(loss):.4f}", flush=True)
    time.sleep(0.1)
with open("/dev/termination-log", "w") as out:
    json.dump({"weight": round(float(weight.numpy()), 3), "steps": int(step.numpy())}, out)
"""

KILLED = """
TFJobOperator(
    task_id="train",
    tfjob=TfJob(worker=Worker(restart_policy=RestartPolicy.EXIT_CODE,
                              command=["python", "-c", SCRIPT], env={"CHECKPOINTS": CHECKPOINTS})),
    image="tf:2", namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG,
    poll_interval=1, startup_timeout_seconds=300,
)
"""


def _kill_once_past_step_20(folder: Path, killed: list[int]) -> None:
    """SIGKILL the replica (as the OOM killer would: exit 137) once it saved step 20."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        checkpoints = list(folder.glob("ckpt-*.index"))
        if len(checkpoints) >= 2 and (folder / "pid").exists():
            pid = int((folder / "pid").read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.2)


def test_a_worker_killed_mid_training_is_recreated_and_resumes_from_its_checkpoint(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("*", REAL)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    killed: list[int] = []
    killer = threading.Thread(target=_kill_once_past_step_20, args=(folder, killed), daemon=True)
    killer.start()
    dagrun = run_dag(
        KILLED, namespace=namespace, kubeconfig=str(kubeconfig), script=RESUMING,
        checkpoints=str(folder),
    )  # fmt: skip
    killer.join(timeout=5)
    out = capfd.readouterr().out
    ti = task_instance(dagrun, "train")
    assert killed, "the replica was never killed"
    assert ti.state == "success", out[-3000:]
    result = ti.xcom_pull(task_ids="train")
    assert result["output"] == {"weight": pytest.approx(3.0, abs=0.01), "steps": 60}
    assert "[worker-0] resumed from step" in out  # the re-created pod's log reached the task log
    assert "[worker-0] step 10 loss" in out  # and the first pod's did too


RAISES = """
from airflow.sdk import task

@task.tfjob(
    task_config=TfJob(chief=Chief(), worker=Worker(replicas=2)),
    image="tf:2", namespace=NAMESPACE, kubernetes_conn_id=None, config_file=KUBECONFIG,
    poll_interval=1, retries=0,
)
def train():
    import time
    from airflow_tfjob.runtime import context
    role = context()
    for step in range(3):
        print(f"{role.replica} step {step}", flush=True)
    if role.replica == "worker-1":
        raise ValueError("shard 3 of the training data is corrupt")
    time.sleep(30)
    return "unreachable"

train()
"""


def test_a_replica_that_raises_fails_the_task_naming_it_its_exit_code_and_last_lines(
    run_dag: Callable[..., Any],
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("*", REAL)
    dagrun = run_dag(RAISES, namespace=namespace, kubeconfig=str(kubeconfig))
    out = capfd.readouterr().out
    assert task_instance(dagrun, "train").state == "failed"
    assert "Failed replicas: worker-1 (exit code 1)" in out, out[-3000:]
    report = out[out.index("Failed replicas: worker-1") :]
    assert "ValueError: shard 3 of the training data is corrupt" in report
    assert "worker-1 step 2" in out
