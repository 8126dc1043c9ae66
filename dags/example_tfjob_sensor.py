"""Waiting on a TFJob that another task submitted: ``TFJobSensor`` (Kubernetes only).

``submit`` creates the TFJob and returns at once (``wait_until_finished=False``), keeping it when
it finishes; ``wait`` is a sensor on it, deferred to the triggerer, so a long training run holds
no worker slot. The job's name comes from ``submit``'s XCom. On the local backend replicas live
only as long as their task, so this pattern needs a cluster.
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator
from airflow_tfjob.sensors.tfjob import TFJobSensor

IMAGE = os.environ.get("TFJOB_EXAMPLE_IMAGE", "airflow-tfjob-train:0.1.0")

with DAG(
    "example_tfjob_sensor",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "tfjob"],
) as dag:
    submit = TFJobOperator(
        task_id="submit",
        backend="kubernetes",
        tfjob=TfJob(chief=Chief(), worker=Worker(replicas=2)),
        image=IMAGE,
        command=["python", "/app/train.py", "--steps", "500"],
        wait_until_finished=False,
        on_finish_action="keep_tfjob",
    )
    wait = TFJobSensor(
        task_id="wait",
        tfjob_name="{{ ti.xcom_pull(task_ids='submit', key='tfjob_name') }}",
        namespace="{{ ti.xcom_pull(task_ids='submit', key='tfjob_namespace') }}",
        target_state="Succeeded",
        poke_interval=10,
        timeout=6 * 3600,
        deferrable=True,
    )
    submit >> wait
