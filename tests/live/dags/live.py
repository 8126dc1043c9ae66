"""The live tier's DAGs (tests/live). Every replica runs ``GATE`` as a real local process (the
kubelet's REAL fate): it waits until the file named by the run's ``conf["gate"]`` exists, so a
test holds the jobs running as long as it needs (all 16 mapped tasks deferred at once, a
triggerer restarted) and then ends them at once. A replica whose ``<gate>.fail-<index>`` file
exists fails with exit code 3 instead. Jobs run in the namespace of the ``kubernetes_default``
connection."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.operators.reaper import TFJobReaperOperator
from airflow_tfjob.operators.tfjob import TFJobOperator
from airflow_tfjob.sensors.tfjob import TFJobSensor

GATE = """
import json, os, sys, time
gate, index = sys.argv[1], sys.argv[2]
print(f"replica of index {index} waits for {gate}", flush=True)
while not os.path.exists(gate):
    time.sleep(0.2)
failed = os.path.exists(f"{gate}.fail-{index}")
message = f"shard {index} is corrupt" if failed else json.dumps({"index": int(index)})
print(message, flush=True)
with open("/dev/termination-log", "w") as out:
    out.write(message)
sys.exit(3 if failed else 0)
"""
START = datetime.datetime(2026, 1, 1)
GATE_ARG = "{{ dag_run.conf['gate'] }}"
COMMON = {"image": "tf:2", "command": ["python", "-c", GATE], "poll_interval": 1}
MAPPED = 16

with DAG("live_operator", schedule=None, start_date=START, catchup=False):
    TFJobOperator(
        task_id="train",
        tfjob=TfJob(chief=Chief(), worker=Worker()),
        args=[GATE_ARG, "0"],
        deferrable=True,
        **COMMON,
    )

with DAG("live_mapped", schedule=None, start_date=START, catchup=False):
    TFJobOperator.partial(
        task_id="train", tfjob=TfJob(worker=Worker()), deferrable=True, **COMMON
    ).expand(args=[[GATE_ARG, str(index)] for index in range(MAPPED)])

with DAG("live_function", schedule=None, start_date=START, catchup=False):

    @task.tfjob(
        task_config=TfJob(chief=Chief(), worker=Worker()),
        image="python:3.11-slim",
        deferrable=True,
        poll_interval=1,
        multiple_outputs=True,
    )
    def fit(gate: str, scale: int) -> dict[str, object]:
        import os
        import time

        from airflow_tfjob.runtime import context

        while not os.path.exists(gate):
            time.sleep(0.2)
        role = context()
        return {"role": f"{role.task_type}-{role.task_index}", "value": scale * 2}

    fit(GATE_ARG, 21)

with DAG("live_sensor", schedule=None, start_date=START, catchup=False):
    submit = TFJobOperator(
        task_id="submit",
        tfjob=TfJob(worker=Worker()),
        args=[GATE_ARG, "0"],
        wait_until_finished=False,
        **COMMON,
    )
    submit >> TFJobSensor(
        task_id="wait",
        tfjob_name="{{ ti.xcom_pull(task_ids='submit', key='tfjob_name') }}",
        deferrable=True,
        poke_interval=1,
        timeout=300,
    )

# live_sync is retried once (a killed worker's retry adopts the job); live_sync_once is not
for dag_id, retries in (("live_sync", 1), ("live_sync_once", 0)):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        TFJobOperator(
            task_id="train",
            tfjob=TfJob(worker=Worker()),
            args=[GATE_ARG, "0"],
            deferrable=False,
            retries=retries,
            retry_delay=datetime.timedelta(seconds=1),
            **COMMON,
        )

# The reaper of tests/live/test_orphans.py, every REAPER_PERIOD; paused until that module runs.
REAPER_PERIOD = datetime.timedelta(seconds=30)
with DAG(
    "live_reaper",
    schedule=REAPER_PERIOD,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
):
    TFJobReaperOperator(task_id="reap", grace_seconds=5)

# The TFJobs page: the viewer may read public_* DAGs only (tests.ui.auth.PrefixAuthManager).
for dag_id in ("public_live", "private_live"):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        TFJobOperator(
            task_id="train",
            tfjob=TfJob(chief=Chief(), worker=Worker()),
            args=[GATE_ARG, "0"],
            deferrable=True,
            on_finish_action="keep_tfjob",
            **COMMON,
        )
