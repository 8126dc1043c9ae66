"""Run a DAG each time a TFJob succeeds, whoever started it (Kubernetes only).

The asset ``tfjob-trained-models`` is fed by an ``AssetWatcher`` whose ``TFJobEventTrigger``
watches the TFJobs of one namespace (here those labelled ``TFJOB_EXAMPLE_SELECTOR``, default
all). Each job that reaches ``Succeeded`` — from an Airflow task, a notebook, CI — becomes one
asset event carrying the job's result, as ``TFJobOperator``'s XCom has it, in
``extra["payload"]``; the scheduler then runs this DAG, whose ``register`` task reads the events
that triggered it and registers each job's model (here: logs it and returns the list as XCom).

On Airflow 3.3 and earlier, the events of jobs that finish while a run of this DAG is queued
would wait for the next job (docs/events.md, "Jobs that finish together"): the ``catch_up`` task
queues the run that takes them.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_tfjob.operators.catch_up import TFJobEventCatchUpOperator
from airflow_tfjob.triggers.events import TFJobEventTrigger

NAMESPACE = os.environ.get("TFJOB_EXAMPLE_NAMESPACE", "default")
SELECTOR = os.environ.get("TFJOB_EXAMPLE_SELECTOR", "")

trained_models = Asset(
    "tfjob-trained-models",
    watchers=[
        AssetWatcher(
            name="tfjob_succeeded",
            trigger=TFJobEventTrigger(namespace=NAMESPACE, label_selector=SELECTOR),
        )
    ],
)

with DAG(
    "example_tfjob_asset_watcher",
    schedule=[trained_models],
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "tfjob"],
) as dag:

    @task
    def register(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """One entry per TFJob that triggered this run (several if they finished together)."""
        registered = []
        for event in triggering_asset_events[trained_models]:
            if "payload" not in event.extra:
                continue  # a catch-up event (below): no job in it
            job = event.extra["payload"]
            print(
                f"Registering the model of TFJob {job['namespace']}/{job['name']} "
                f"(uid {job['uid']}, {job['phase']} at {job['completion_time']}): {job['output']}"
            )
            registered.append({"tfjob": job["name"], "uid": job["uid"], "output": job["output"]})
        return registered

    register() >> TFJobEventCatchUpOperator(task_id="catch_up", asset=trained_models)
