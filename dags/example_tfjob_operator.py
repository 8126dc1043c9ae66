"""A distributed TensorFlow program run by ``TFJobOperator``: a chief and two workers.

The replicas run a training script (``scripts/fit_line.py``, which is ``/app/train.py`` in the
training image) with ``MultiWorkerMirroredStrategy``; the chief's result — written to the
termination log — is the task's XCom ``output``, and a downstream task reads it. On Kubernetes it
needs a ``kubernetes`` connection to a cluster running the Kubeflow training operator; with
``[tfjob] backend = local`` it runs on this machine.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from airflow.configuration import conf
from airflow.sdk import DAG, task

from airflow_tfjob import Chief, Resources, RestartPolicy, RunPolicy, TfJob, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator

IMAGE = os.environ.get("TFJOB_EXAMPLE_IMAGE", "airflow-tfjob-train:0.1.0")
LOCAL = conf.get("tfjob", "backend", fallback="kubernetes") == "local"
SCRIPT = str(Path(__file__).parent / "scripts" / "fit_line.py") if LOCAL else "/app/train.py"

with DAG(
    "example_tfjob_operator",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "tfjob"],
) as dag:
    train = TFJobOperator(
        task_id="train",
        tfjob=TfJob(
            chief=Chief(requests=Resources(cpu="1", mem="2Gi")),
            worker=Worker(
                replicas=2,
                requests=Resources(cpu="1", mem="2Gi"),
                limits=Resources(cpu="2", mem="4Gi"),
                restart_policy=RestartPolicy.EXIT_CODE,
            ),
            run_policy=RunPolicy(backoff_limit=3, active_deadline_seconds=3600),
        ),
        image=IMAGE,
        command=["python", SCRIPT],
        args=["--steps", "{{ params.steps }}", "--output", "/dev/termination-log"],
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        params={"steps": 100},
        execution_timeout=datetime.timedelta(hours=1),
    )

    @task
    def report(result: dict[str, Any]) -> str:
        fitted = result["output"]
        line = (
            f"TFJob {result['namespace']}/{result['name']} {result['state']}: "
            f"y = {fitted['slope']}x + {fitted['intercept']} (loss {fitted['loss']})"
        )
        print(line)
        return line

    report(train.output)
