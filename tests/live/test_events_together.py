"""TFJobs that finish together, in a real deployment (Airflow 3.3, PostgreSQL): every job reaches
a run of a DAG that ends with ``TFJobEventCatchUpOperator``, within a bound, exactly once; the
same jobs leave two of their events behind in a DAG without it (apache/airflow#54659, which the
operator covers: docs/events.md, "Jobs that finish together").

Both DAGs are scheduled on assets fed by a ``TFJobEventTrigger`` on the module's namespace (one
asset each: a catch-up event must not queue the other DAG), run at most one run at a time and
take 20 s a run, as a consumer that registers models might. Job A starts a run of each; jobs B,
C and D finish together while that run holds the DAG at ``max_active_runs``: the first of their
events queues the next run, the other two are stored after it was queued."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import Fate, Script
from tests.live.conftest import report
from tests.live.deployment import Deployment
from tests.live.jobs import create_outside_airflow, last_condition, watching_dags
from tests.live.rest import AirflowClient
from tests.waiting import eventually

CAUGHT, CONTROL = "live_together_caught", "live_together_control"
RUN_SECONDS = 20
DAG_FILE = """
from __future__ import annotations

import datetime
import time

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_tfjob.operators.catch_up import TFJobEventCatchUpOperator
from airflow_tfjob.triggers.events import TFJobEventTrigger

for dag_id, catch_up in (("{caught}", True), ("{control}", False)):
    trigger = TFJobEventTrigger(namespace="{namespace}")
    models = Asset(dag_id, watchers=[AssetWatcher(name=dag_id + "-watcher", trigger=trigger)])
    with DAG(
        dag_id,
        schedule=[models],
        start_date=datetime.datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
    ):

        @task
        def register(*, triggering_asset_events=None, asset=models):
            time.sleep({seconds})  # registering the models takes a while
            events = triggering_asset_events[asset]
            return {{
                "jobs": [e.extra["payload"]["name"] for e in events if "payload" in e.extra],
                "catch_up_events": sum("airflow_tfjob_catch_up" in e.extra for e in events),
            }}

        if catch_up:
            register() >> TFJobEventCatchUpOperator(task_id="catch_up", asset=models)
        else:
            register()
"""


@pytest.fixture(scope="module")
def watching(
    live: Deployment, live_proxy: FaultProxy, events_namespace: tuple[str, Script]
) -> Iterator[str]:
    """Both DAGs parsed, unpaused and watching the module's namespace; paused afterwards."""
    namespace, _ = events_namespace
    source = DAG_FILE.format(
        namespace=namespace, caught=CAUGHT, control=CONTROL, seconds=RUN_SECONDS
    )
    with watching_dags(live, live_proxy, namespace, "live_together.py", source, [CAUGHT, CONTROL]):
        yield namespace


def _runs(api: AirflowClient, dag_id: str, state: str | None = None) -> list[dict[str, Any]]:
    params = {"order_by": "run_after", **({"state": state} if state else {})}
    return api.call("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]  # type: ignore[no-any-return]


def _taken(api: AirflowClient, dag_id: str) -> list[dict[str, Any]]:
    """What each finished run of the DAG registered, oldest first."""
    taken = []
    for run in _runs(api, dag_id, "success"):
        taken.append(api.xcom(dag_id, run["dag_run_id"], "register"))
    return taken


def _jobs(api: AirflowClient, dag_id: str) -> list[str]:
    return [job for run in _taken(api, dag_id) for job in run["jobs"]]


def _idle(api: AirflowClient, dag_id: str) -> bool:
    return not any(_runs(api, dag_id, state) for state in ("queued", "running"))


@pytest.mark.timeout(600)
def test_jobs_finishing_together_each_reach_one_run_and_none_is_left_behind(
    live_api: AirflowClient,
    kube_api: kubernetes.client.ApiClient,
    events_namespace: tuple[str, Script],
    watching: str,
) -> None:
    namespace, replicas = events_namespace
    for name in ("job-a", "job-b", "job-c", "job-d"):
        replicas.set_fate(name, "Chief", 0, Fate(duration=1.0, message='{"auc": 0.9}'))
    create_outside_airflow(kube_api, namespace, "job-a", {})
    for dag_id in (CAUGHT, CONTROL):  # job A's run holds each DAG at max_active_runs
        eventually(functools.partial(_runs, live_api, dag_id, "running"), timeout=120)
    for name in ("job-b", "job-c", "job-d"):
        create_outside_airflow(kube_api, namespace, name, {})
    together = ("job-b", "job-c", "job-d")
    eventually(
        lambda: all(last_condition(kube_api, namespace, n) == "Succeeded" for n in together),
        timeout=60,
    )
    finished = time.monotonic()
    assert all(_runs(live_api, dag_id, "running") for dag_id in (CAUGHT, CONTROL)), (
        "jobs B-D must finish while job A's runs still hold both DAGs"
    )

    eventually(lambda: sorted(_jobs(live_api, CAUGHT)) == ["job-a", *together], timeout=240)
    waited = time.monotonic() - finished
    eventually(lambda: _idle(live_api, CAUGHT) and _idle(live_api, CONTROL), timeout=120)
    caught = _taken(live_api, CAUGHT)
    assert sorted(_jobs(live_api, CAUGHT)) == ["job-a", *together]  # each once, none twice
    assert any(run["catch_up_events"] for run in caught), caught  # a catch-up queued a run
    # bound: the rest of job A's run, the run taking the first of B-D, and the one after it
    assert waited < 3 * (RUN_SECONDS + 30), waited

    control = _jobs(live_api, CONTROL)
    report(
        f"events together: 3 jobs finished together; with the catch-up all 4 jobs reached "
        f"{len(caught)} runs, the last {waited:.0f} s after they finished; without it "
        f"{len(control)} of 4 did"
    )
    assert control[0] == "job-a" and len(control) == 2, control  # two of B-D left behind
