"""The DAGs of the second live deployment (tests/live/pair.py; test_handover, test_secrets): a
chief (and the default worker) that print numbered lines (``tick 1``, ``tick 2``, ... every
0.2 s) until the file named by the run's ``conf["gate"]`` exists, then ``{"ticks": <last
number>}``, the chief's output. Their logs are followed (``get_logs=True``): deferred in
``pair_handover``, on the worker in ``pair_sync``."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_tfjob import Chief, TfJob
from airflow_tfjob.operators.tfjob import TFJobOperator

TICKS = """
import json, os, sys, time
gate, n = sys.argv[1], 0
while not os.path.exists(gate):
    n += 1
    print(f"tick {n}", flush=True)
    time.sleep(0.2)
message = json.dumps({"ticks": n})
print(message, flush=True)
with open("/dev/termination-log", "w") as out:
    out.write(message)
"""
START = datetime.datetime(2026, 1, 1)
COMMON = {
    "tfjob": TfJob(chief=Chief()),
    "image": "tf:2",
    "command": ["python", "-c", TICKS],
    "args": ["{{ dag_run.conf['gate'] }}"],
    "get_logs": True,
    "poll_interval": 1,
}

with DAG("pair_handover", schedule=None, start_date=START, catchup=False):
    TFJobOperator(task_id="train", deferrable=True, **COMMON)

with DAG("pair_sync", schedule=None, start_date=START, catchup=False):
    TFJobOperator(task_id="train", deferrable=False, **COMMON)
