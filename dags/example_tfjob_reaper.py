"""Reap orphaned TFJobs: every 5 minutes, delete the TFJobs this deployment created whose task
instance has ended (or no longer exists) while the job still runs.

Deploy it beside your training DAGs; it starts unpaused. Which clusters and namespaces it covers,
and the label that tells this deployment's jobs from another's, come from ``[tfjob]`` settings
(docs/orphans.md).
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_tfjob.operators.reaper import TFJobReaperOperator

with DAG(
    "tfjob_reaper",
    schedule=datetime.timedelta(minutes=5),
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # maintenance: it runs as soon as it is deployed
    dagrun_timeout=datetime.timedelta(minutes=10),
    tags=["tfjob", "maintenance"],
    doc_md=__doc__,
):
    TFJobReaperOperator(task_id="reap", retries=1, retry_delay=datetime.timedelta(minutes=1))
