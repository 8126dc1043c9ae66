"""A distributed TensorFlow job on Kubernetes with the Kubeflow training operator.

Chief + 2 PS + 4 workers with a run policy; the job's output (the chief's termination message)
comes back as the task's XCom, and a downstream task reads it. Needs a ``kubernetes`` connection
(or a kubeconfig) to a cluster running the Kubeflow training operator.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_tfjob import PS, Chief, Resources, RestartPolicy, RunPolicy, TfJob, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator

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
            ps=PS(replicas=2, requests=Resources(cpu="500m", mem="1Gi")),
            worker=Worker(
                replicas=4,
                requests=Resources(cpu="2", mem="4Gi"),
                limits=Resources(cpu="4", mem="8Gi"),
                restart_policy=RestartPolicy.EXIT_CODE,
            ),
            run_policy=RunPolicy(backoff_limit=3, active_deadline_seconds=6 * 3600),
        ),
        image="registry.example/mnist-train:1.4",
        command=["python", "/app/train.py"],
        args=["--epochs", "10", "--run", "{{ run_id }}"],
        namespace="ml",
        execution_timeout=datetime.timedelta(hours=7),
    )

    @task
    def report(result: dict) -> None:  # type: ignore[type-arg]
        print(f"TFJob {result['namespace']}/{result['name']} {result['state']}: {result['output']}")

    report(train.output)
