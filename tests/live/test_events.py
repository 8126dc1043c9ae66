"""Event-driven DAGs in a real deployment: TFJobs created outside Airflow, watched by two
``AssetWatcher``s (``TFJobEventTrigger``) on one namespace, run the DAGs scheduled on their
assets — once per job that succeeds, none for one that fails, none lost or repeated across a
triggerer restart, and one watch stream for both watchers.

The module's jobs live in a namespace of their own, with its own simulated training operator;
the DAG file is written into the deployment when the module starts and removed at its end."""

from __future__ import annotations

import signal
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

ALL, VISION = "live_events_all", "live_events_vision"
DAG_FILE = """
from __future__ import annotations

import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_tfjob.triggers.events import TFJobEventTrigger


def watched(name, **kwargs):
    trigger = TFJobEventTrigger(namespace="{namespace}", **kwargs)
    return Asset(name, watchers=[AssetWatcher(name=name + "-watcher", trigger=trigger)])


for dag_id, asset in (
    ("{all}", watched("live-tfjobs-{namespace}")),
    ("{vision}", watched("live-vision-tfjobs-{namespace}", label_selector="team=vision")),
):
    with DAG(
        dag_id,
        schedule=[asset],
        start_date=datetime.datetime(2026, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,  # a paused DAG's assets have no watchers running
    ):

        @task
        def record(*, triggering_asset_events=None):
            return [
                {{"name": e.extra["payload"]["name"], "output": e.extra["payload"]["output"]}}
                for events in triggering_asset_events.values()
                for e in events
            ]

        record()
"""


@pytest.fixture(scope="module")
def watching(
    live: Deployment,
    live_proxy: FaultProxy,
    events_namespace: tuple[str, Script],
) -> Iterator[str]:
    """The two watcher DAGs, parsed, unpaused and watching; removed (and paused) afterwards."""
    namespace, _ = events_namespace
    source = DAG_FILE.format(namespace=namespace, all=ALL, vision=VISION)
    with watching_dags(live, live_proxy, namespace, "live_events.py", source, [ALL, VISION]):
        yield namespace


def _jobs(namespace: str) -> str:
    return rf"/namespaces/{namespace}/tfjobs$"


def _runs(api: AirflowClient, dag_id: str) -> list[dict[str, Any]]:
    """The DAG's finished runs, oldest first, each with what its task recorded."""
    found = api.call("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after"})
    runs = []
    for run in found["dag_runs"]:
        done = api.wait_for_run(dag_id, run["dag_run_id"], timeout=120)
        assert done["state"] == "success", api.task_log(dag_id, run["dag_run_id"], "record")
        recorded = api.xcom(dag_id, run["dag_run_id"], "record")
        runs.append({"run_id": run["dag_run_id"], "run_type": run["run_type"], "jobs": recorded})
    return runs


def _jobs_run(api: AirflowClient, dag_id: str) -> list[str]:
    return [job["name"] for run in _runs(api, dag_id) for job in run["jobs"]]


def test_a_job_that_succeeds_outside_airflow_runs_each_matching_dag_once_with_its_output(
    live_api: AirflowClient,
    kube_api: kubernetes.client.ApiClient,
    events_namespace: tuple[str, Script],
    watching: str,
) -> None:
    namespace, sim = events_namespace
    sim.set_fate("nb-vision", "Chief", 0, Fate(duration=1.0, message='{"auc": 0.93}'))
    created = time.monotonic()
    create_outside_airflow(kube_api, namespace, "nb-vision", {"team": "vision"})
    eventually(lambda: _jobs_run(live_api, ALL) == ["nb-vision"], timeout=120)
    eventually(lambda: _jobs_run(live_api, VISION) == ["nb-vision"], timeout=120)
    report(
        f"events: TFJob created -> both watcher DAG runs succeeded in {time.monotonic() - created:.1f} s"
    )
    for dag_id in (ALL, VISION):
        runs = _runs(live_api, dag_id)
        assert len(runs) == 1 and runs[0]["run_type"] == "asset_triggered", runs
        assert runs[0]["jobs"] == [{"name": "nb-vision", "output": {"auc": 0.93}}]


def test_a_failed_job_runs_no_dag_and_a_job_of_another_team_only_the_unfiltered_one(
    live_api: AirflowClient,
    kube_api: kubernetes.client.ApiClient,
    events_namespace: tuple[str, Script],
    watching: str,
) -> None:
    namespace, sim = events_namespace
    sim.set_fate("nb-broken", "Chief", 0, Fate(duration=1.0, exit_code=2, message="nan loss"))
    sim.set_fate("nb-speech", "Chief", 0, Fate(duration=2.0, message='{"wer": 0.1}'))
    create_outside_airflow(kube_api, namespace, "nb-broken", {"team": "vision"})
    create_outside_airflow(kube_api, namespace, "nb-speech", {"team": "speech"})
    eventually(lambda: _jobs_run(live_api, ALL) == ["nb-vision", "nb-speech"], timeout=120)
    assert last_condition(kube_api, namespace, "nb-broken") == "Failed"
    time.sleep(5)  # the failed job finished before the speech one; nothing more comes
    assert _jobs_run(live_api, ALL) == ["nb-vision", "nb-speech"]
    assert _jobs_run(live_api, VISION) == ["nb-vision"]


def test_a_triggerer_restart_neither_loses_nor_repeats_a_run_and_two_watchers_share_a_watch(
    live: Deployment,
    live_api: AirflowClient,
    live_proxy: FaultProxy,
    kube_api: kubernetes.client.ApiClient,
    events_namespace: tuple[str, Script],
    watching: str,
) -> None:
    namespace, sim = events_namespace
    jobs = _jobs(namespace)
    assert live_proxy.open_streams(jobs) == 1  # two watchers, one watch of the namespace
    sim.set_fate("nb-while-down", "Chief", 0, Fate(duration=1.0, message='{"auc": 0.97}'))
    triggerer = live.components["triggerer"]
    triggerer.stop(signal.SIGTERM)
    eventually(lambda: live_proxy.open_streams(jobs) == 0, timeout=60)
    create_outside_airflow(kube_api, namespace, "nb-while-down", {"team": "vision"})
    eventually(
        lambda: last_condition(kube_api, namespace, "nb-while-down") == "Succeeded", timeout=60
    )
    triggerer.start()
    live.wait_healthy("triggerer")
    expected = ["nb-vision", "nb-speech", "nb-while-down"]
    eventually(lambda: _jobs_run(live_api, ALL) == expected, timeout=180)
    eventually(lambda: _jobs_run(live_api, VISION) == ["nb-vision", "nb-while-down"], timeout=180)
    eventually(lambda: live_proxy.open_streams(jobs) == 1, timeout=60)  # one watch again
    time.sleep(5)  # the relist after the restart showed every job again: none fires twice
    assert _jobs_run(live_api, ALL) == expected
    assert _jobs_run(live_api, VISION) == ["nb-vision", "nb-while-down"]
    fired = [line for line in triggerer.read_log().splitlines() if "firing for the asset" in line]
    report(
        f"events: {len(fired)} events fired, {live_proxy.requests(jobs, watch=True)} TFJob watch requests"
    )
    assert len(fired) == 5, fired  # all: 3 jobs, vision: 2; never a second time
