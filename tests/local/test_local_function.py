"""``@task.tfjob`` on the local backend: the function runs in every replica, the chief's return
value is the XCom — also with a payload at the carrier's limit, which Linux must accept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_tfjob.decorators.tfjob import MAX_PAYLOAD_BYTES
from tests.airflow_fixtures import task_instance

BODY = """
from airflow.sdk import task

@task.tfjob(task_config=TfJob(chief=Chief(), worker=Worker(replicas=2)), image="tf:2",
            backend="local")
def train(blob, scale):
    from airflow_tfjob.runtime import context
    role = context()
    print(f"{role.replica} of {sorted(role.cluster)} has {len(blob)} characters", flush=True)
    return {"who": role.replica, "size": len(blob) * scale}

train(BLOB, 2)
"""


def test_the_function_runs_in_every_replica_and_the_chief_returns(
    run_dag: Callable[..., Any],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import os

    from airflow_tfjob import runtime

    monkeypatch.setenv("AIRFLOW__TFJOB__LOCAL_RUN_DIR", str(tmp_path))
    blob = os.urandom(int(MAX_PAYLOAD_BYTES * 0.6)).hex()  # near the limit once encoded
    assert 0.9 < len(runtime.encode(blob.encode())) / MAX_PAYLOAD_BYTES < 0.99
    dagrun = run_dag(BODY, blob=blob)
    ti = task_instance(dagrun, "train")
    out = capfd.readouterr().out
    assert ti.state == "success", out[-3000:]
    assert ti.xcom_pull(task_ids="train") == {"who": "chief-0", "size": len(blob) * 2}
    for replica in ("chief-0", "worker-0", "worker-1"):
        assert f"[{replica}] {replica} of ['chief', 'worker'] has {len(blob)} characters" in out
