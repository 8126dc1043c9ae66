"""Live-tier smoke DAG: one deferrable TFJobOperator (a chief and one worker) in the namespace of
the ``kubernetes_default`` connection; it waits in the triggerer."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.operators.tfjob import TFJobOperator

with DAG("live_smoke", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
    TFJobOperator(
        task_id="train",
        tfjob=TfJob(chief=Chief(), worker=Worker(replicas=1)),
        image="tf:2",
        deferrable=True,
        poll_interval=1,
        kubernetes_conn_id="kubernetes_default",
    )
