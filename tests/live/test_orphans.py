"""No TFJob outlives its task, in a real deployment: the paths where Airflow tells the task
nothing (a deferred task marked failed or success, or its run deleted, while the triggerer is
down and stays down; a deferred task marked failed the moment it deferred; a worker SIGKILLed with no retries
left) leave a job running; the TFJobs page marks it, and the reaper (``live_reaper``, every
``PERIOD`` seconds, grace 5 s) deletes it, its pods and their processes within the period plus
a minute. Another deployment's job, a job without our labels and a job of a DAG this Airflow
does not know, in the same namespace, are left alone."""

from __future__ import annotations

import datetime
import re
import signal
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import kubernetes
import psutil
import pytest

from airflow_tfjob import Chief, TfJob
from airflow_tfjob.model import naming
from tests.cluster import jobs as tfjobs
from tests.kubelet.fates import RUNS_FOR_EVER, Script
from tests.live.conftest import report
from tests.live.deployment import Deployment
from tests.live.jobs import Gate, gone, pods, replica_processes, tfjob, triggers_started
from tests.live.rest import AirflowClient
from tests.waiting import eventually

PERIOD = 30.0
"""``live_reaper``'s schedule (tests/live/dags/live.py)."""
BOUND = PERIOD + 60.0
"""The issue's promise: a job is gone within the reaper's period plus a minute."""
DAG = "live_operator"
_TIMES: dict[str, float] = {}


def _deployment_label(live: Deployment) -> str:
    url = urlparse(live.url)  # [api] base_url, from which the deployment's label is made
    return f"{url.hostname}-{url.port}"


def _bystander(
    name: str, namespace: str, dag_id: str | None, deployment: str | None
) -> dict[str, Any]:
    labels: dict[str, str] = {"team": "elsewhere"}
    notes: dict[str, str] = {}
    if dag_id is not None:
        labels = naming.task_labels(
            dag_id, "train", "manual__not-here", -1, 1, deployment=deployment
        )
        notes = naming.task_annotations(dag_id, "train", "manual__not-here", -1)
    return TfJob(chief=Chief()).to_manifest(
        name, namespace, image="tf:2", labels=labels, annotations=notes
    )


@pytest.fixture(scope="module")
def reaper(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    live_replicas: Script,
    kube_api: kubernetes.client.ApiClient,
) -> Iterator[dict[str, str]]:
    """``live_reaper`` unpaused for the module, and three running jobs it must not touch (name
    -> uid): another deployment's, one without our labels, one of a DAG Airflow does not know."""
    jobs = {
        "bystander-other-deployment": _bystander(
            "bystander-other-deployment", live_namespace, "live_sync_once", "another-airflow"
        ),
        "bystander-not-ours": _bystander("bystander-not-ours", live_namespace, None, None),
        "bystander-unknown-dag": _bystander(
            "bystander-unknown-dag", live_namespace, "not_in_this_airflow", _deployment_label(live)
        ),
    }
    for name in jobs:
        live_replicas.set_fate(name, "Chief", 0, RUNS_FOR_EVER)
    uids = {name: tfjobs.create(kube_api, live_namespace, job)["metadata"]["uid"] for name, job
            in jobs.items()}  # fmt: skip
    for name in jobs:
        tfjobs.wait_for(kube_api, live_namespace, name, tfjobs.has("Running"), timeout=60)
    live_api.wait_for_dag("live_reaper")
    live_api.unpause("live_reaper")
    try:
        yield uids
    finally:
        live_api.call("PATCH", "/dags/live_reaper", json={"is_paused": True})
        custom = kubernetes.client.CustomObjectsApi(kube_api)
        for name in jobs:
            custom.delete_namespaced_custom_object(
                "kubeflow.org", "v1", live_namespace, "tfjobs", name
            )
        if _TIMES:
            report(
                "orphans, task instance end -> job deleted: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in _TIMES.items())
                + f" (reaper period {PERIOD:.0f} s, grace 5 s)"
            )


def _marks(live: Deployment, api: AirflowClient) -> dict[str, str | None]:
    """Job name -> the TFJobs page's orphan mark (as admin sees it)."""
    response = api.http.get(f"{live.url}/tfjob/api/jobs")
    response.raise_for_status()
    return {row["name"]: row["orphan"] for t in response.json()["targets"] for row in t["jobs"]}


def _ended(ti: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00")).timestamp()


def _reaped(live: Deployment, namespace: str, name: str) -> bool:
    """The reaper's task logs say it deleted this job."""
    line = f"Deleted orphaned TFJob {namespace}/{name} "
    return any(
        line in path.read_text(errors="replace")
        for path in (live.logs / "dag_id=live_reaper").glob("**/*.log")
    )


def _wait_gone(
    kube_api: kubernetes.client.ApiClient, namespace: str, names: dict[str, str]
) -> dict[str, float]:
    """Poll until every job and its pods are gone: path -> when it was seen gone."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + BOUND + 30
    while len(seen) < len(names) and time.monotonic() < deadline:
        for path, name in names.items():
            if path not in seen and gone(kube_api, namespace, name):
                seen[path] = time.time()
        time.sleep(0.5)
    assert len(seen) == len(names), f"still there: {set(names) - set(seen)}"
    return seen


def test_deferred_tasks_ended_while_the_triggerer_is_down_leave_jobs_the_reaper_ends(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
    reaper: dict[str, str],
) -> None:
    live.components["triggerer"].stop(signal.SIGTERM)
    paths = ("marked failed", "marked success", "run deleted")
    runs = {path: live_api.trigger(DAG, gate.conf) for path in paths}
    for run in runs.values():
        live_api.wait_for_task(DAG, run, "train", ["deferred"], timeout=120)
    names = {path: live_api.xcom(DAG, run, "train", "tfjob_name") for path, run in runs.items()}
    for name in names.values():
        eventually(lambda n=name: pods(kube_api, live_namespace, n), timeout=60)

    ended = {}
    for path, state in (("marked failed", "failed"), ("marked success", "success")):
        live_api.set_task_state(DAG, runs[path], "train", state)
        ended[path] = _ended(live_api.task_instance(DAG, runs[path], "train"))
    # Airflow refuses to delete a running run (409): a user marks it failed, then deletes it
    doomed = f"/dags/{DAG}/dagRuns/{runs['run deleted']}"
    live_api.call("PATCH", doomed, json={"state": "failed"})
    ended["run deleted"] = _ended(live_api.task_instance(DAG, runs["run deleted"], "train"))
    live_api.call("DELETE", doomed)
    # the page shows the orphans at once (the reaper reads a job twice, 5 s apart, first); a job
    # whose task instance no longer exists is not shown to anyone (docs/orphans.md, "Who sees
    # which job"), and the reaper deletes it all the same
    shown = [names[paths[0]], names[paths[1]]]
    marks = eventually(
        lambda: (m := _marks(live, live_api)) and all(m.get(n) for n in shown) and m,
        timeout=10,
    )
    assert re.fullmatch(r"task failed \d+ s ago; job still running", marks[names[paths[0]]])
    assert re.fullmatch(r"task success \d+ s ago; job still running", marks[names[paths[1]]])
    assert names[paths[2]] not in marks
    # the triggerer stays down (crashed, say): a triggerer that comes back loads the triggers of
    # tasks marked meanwhile and Airflow 3.3 calls their on_kill, but nothing may wait for that
    seen = _wait_gone(kube_api, live_namespace, names)
    for path in paths:
        _TIMES[path] = seen[path] - ended[path]
        assert _TIMES[path] <= BOUND, (path, _TIMES[path])
        assert _reaped(live, live_namespace, names[path]), path
    eventually(lambda: not replica_processes(gate), timeout=30)
    assert sum(triggers_started(live, DAG, run) for run in runs.values()) == 0
    live.components["triggerer"].start()
    live.wait_healthy("triggerer")


def test_a_task_marked_failed_as_it_defers_and_a_worker_killed_without_retries(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    gate: Gate,
    reaper: dict[str, str],
) -> None:
    race, sync = live_api.trigger(DAG, gate.conf), live_api.trigger("live_sync_once", gate.conf)
    live_api.wait_for_task(DAG, race, "train", ["deferred"], timeout=120)
    live_api.set_task_state(DAG, race, "train", "failed")  # as soon as it deferred
    ended = {"marked failed as it deferred": _ended(live_api.task_instance(DAG, race, "train"))}
    names = {"marked failed as it deferred": live_api.xcom(DAG, race, "train", "tfjob_name")}

    name = eventually(lambda: _xcom_or_none(live_api, "live_sync_once", sync), timeout=90)
    eventually(lambda: pods(kube_api, live_namespace, name), timeout=60)
    ti = live_api.wait_for_task("live_sync_once", sync, "train", ["running"], timeout=60)
    runner = eventually(lambda: live.task_processes(ti["id"]).runner, timeout=30)
    psutil.Process(runner).send_signal(signal.SIGKILL)  # the OOM killer: no on_kill, no retry
    failed = live_api.wait_for_task("live_sync_once", sync, "train", ["failed"], timeout=120)
    ended["worker SIGKILLed, no retries"], names["worker SIGKILLed, no retries"] = (
        _ended(failed),
        name,
    )

    shown: dict[str, str] = {}

    def settled() -> bool:  # each job: marked on the page, or already gone
        marks = _marks(live, live_api)
        shown.update({p: marks[n] for p, n in names.items() if marks.get(n)})
        return all(p in shown or gone(kube_api, live_namespace, n) for p, n in names.items())

    eventually(settled, timeout=60, interval=0.5)
    assert re.fullmatch(
        r"task failed \d+ s ago; job still running", shown["worker SIGKILLed, no retries"]
    )
    seen = _wait_gone(kube_api, live_namespace, names)
    for path, job in names.items():
        _TIMES[path] = seen[path] - ended[path]
        assert _TIMES[path] <= BOUND, (path, _TIMES[path])
        if _reaped(live, live_namespace, job):
            assert path in shown, path  # what the reaper ended, the page had marked
    assert _reaped(live, live_namespace, names["worker SIGKILLed, no retries"])
    # the race: either no triggerer had loaded the trigger (an orphan, reaped) or one had and
    # its on_kill deleted the job; both end here
    race_path = "marked failed as it deferred"
    if not _reaped(live, live_namespace, names[race_path]):
        log = live_api.task_log(DAG, race, "train")
        assert f"Deleted TFJob {live_namespace}/{names[race_path]}" in log, log
    report(
        f"orphans: the race ({race_path}) was "
        + ("reaped" if _reaped(live, live_namespace, names[race_path]) else "ended by on_kill")
    )
    eventually(lambda: not replica_processes(gate), timeout=30)


def test_the_reaper_left_alone_what_is_not_this_deployments(
    live: Deployment,
    live_api: AirflowClient,
    live_namespace: str,
    kube_api: kubernetes.client.ApiClient,
    reaper: dict[str, str],
) -> None:
    runs = eventually(lambda: _reaper_runs(live_api, 2), timeout=2 * PERIOD + 60)
    assert all(r["state"] == "success" for r in runs[:2]), runs
    for name, uid in reaper.items():
        job = tfjob(kube_api, live_namespace, name)
        assert job is not None and job["metadata"]["uid"] == uid, name
        assert tfjobs.has("Running")(job), name
    logs = "".join(
        p.read_text(errors="replace") for p in (live.logs / "dag_id=live_reaper").glob("**/*.log")
    )
    assert "Not touching 1 TFJob(s) of DAG 'not_in_this_airflow'" in logs
    assert "bystander" not in logs.replace("bystander-unknown-dag", "")


def _reaper_runs(api: AirflowClient, count: int) -> list[dict[str, Any]] | None:
    """The reaper's finished runs once there are ``count``, newest first."""
    found = api.call("GET", "/dags/live_reaper/dagRuns", params={"order_by": "-run_after"})
    done = [r for r in found["dag_runs"] if r["state"] in ("success", "failed")]
    return done if len(done) >= count else None


def _xcom_or_none(api: AirflowClient, dag: str, run: str) -> str | None:
    try:
        return str(api.xcom(dag, run, "train", "tfjob_name"))
    except KeyError:
        return None
