"""The task instances' "TFJob" tab, in each supported Airflow version's api-server served under
``/airflow`` (``airflow_ui``): its API shows the jobs of the task instance being looked at (every
try's, newest first, with state, replicas, failure report and log) under the page's rules, and
Chromium shows it inside Airflow's task-instance view behind a real login.

Airflow's UI fills the task instance into the tab's href: from 3.2 URL-encoded, on 3.1 as it is
(a run id's ``+`` raw), and an unmapped task instance's ``{MAP_INDEX}`` not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import kubernetes

from tests.airflow_fixtures import tfjob_hook
from tests.cluster import jobs as tfjobs
from tests.kubelet.fates import Fate
from tests.ui.conftest import (
    CHIEF_LOG,
    MAPPED_RUN,
    RUNS,
    WORKER_LOG,
    UiJobs,
    UiServer,
    manifest,
)
from tests.waiting import eventually

UNMAPPED = "{MAP_INDEX}"
"""What Airflow's UI leaves in the href of an unmapped task instance."""


def _task(
    server: UiServer,
    user: str | None,
    dag_id: str,
    run_id: str,
    task_id: str = "train",
    map_index: str = UNMAPPED,
) -> httpx.Response:
    query = urlencode(
        {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    )
    return server.get(f"/tfjob/api/task?{query}", user)


def _shown(server: UiServer, user: str, *args: str) -> dict[str, Any]:
    response = _task(server, user, *args)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _names(body: dict[str, Any]) -> list[str]:
    return [job["name"] for job in body["jobs"]]


def _suffix(server: UiServer) -> str:
    """Job names per server: the versions' cases run one after the other on one cluster."""
    return server.version.replace(".", "-")


def test_the_tab_shows_every_try_of_its_task_instance_and_nothing_else(
    airflow_ui: UiServer, ui_jobs: UiJobs, kubeconfig: Path, kube_api: kubernetes.client.ApiClient
) -> None:
    hook, namespace, names = tfjob_hook(kubeconfig), ui_jobs.namespace, ui_jobs.names
    dag_id, run_id = RUNS["failed"]
    retry = f"public-train-retry-{_suffix(airflow_ui)}"  # the second try's job
    ui_jobs.replicas.set_fate(retry, "Chief", 0, Fate(exit_code=None, logs=["try 2: epoch 1"]))
    hook.create(manifest(retry, namespace, dag_id, "train", run_id, try_number=2))
    try:
        tfjobs.wait_for(kube_api, namespace, retry, tfjobs.has("Running"), timeout=60)
        body = eventually(
            lambda: (b := _shown(airflow_ui, "viewer", dag_id, run_id))["jobs"][0]["log"] and b,
            timeout=30,
        )  # the chief's first line is written a moment after it runs
        assert body["task"] == {
            "dag_id": dag_id, "task_id": "train", "run_id": run_id, "map_index": -1,
        }  # fmt: skip
        assert _names(body) == [retry, names["failed"]]  # newest first
        newest, first = body["jobs"]
        assert (newest["try_number"], newest["state"], newest["failure"]) == (2, "Running", None)
        assert newest["log_replica"] == "chief-0" and newest["log"] == ["try 2: epoch 1"]
        assert newest["replicas"]["Chief"] == {"total": 1, "active": 1, "succeeded": 0, "failed": 0}
        assert (first["try_number"], first["state"]) == (1, "Failed")
        assert first["replicas"]["Worker"]["failed"] == 1
        assert first["failure"].startswith(f"TFJob {namespace}/{names['failed']} failed: ")
        assert "Failed replicas: worker-1 (exit code 1)" in first["failure"]
        assert "worker-1 termination message: CUDA error: out of memory" in first["failure"]
        assert {p["replica"]: p["exit_code"] for p in first["pods"]}["worker-1"] == 1
        (unreachable,) = body["errors"]
        assert unreachable.startswith("cannot reach the cluster of connection 'tfjob_down'")
        assert "not-a-real-token" not in str(body)

        for index in (UNMAPPED, "-1", ""):  # the other task instance of the DAG: its job alone
            ok = _shown(airflow_ui, "viewer", *RUNS["succeeded"], "train", index)
            assert _names(ok) == [names["succeeded"]], index
        (job,) = ok["jobs"]
        assert (job["state"], job["failure"], job["log"]) == ("Succeeded", None, CHIEF_LOG)
        assert job["task_instance_path"].startswith("/dags/public_train/runs/")
        assert ok["ui_base"] == "/airflow"
        detail = f"/tfjob/api/jobs/tfjob_test/{namespace}/{names['succeeded']}?replica=worker-1"
        worker = airflow_ui.get(detail, "viewer").json()
        assert (worker["log_replica"], worker["log"]) == ("worker-1", WORKER_LOG)
    finally:
        _delete(kubeconfig, namespace, retry)


def test_a_task_instance_the_user_may_not_read_or_that_does_not_exist_is_not_found(
    airflow_ui: UiServer, ui_jobs: UiJobs
) -> None:
    dag_id, run_id = RUNS["secret"]
    hidden = _task(airflow_ui, "viewer", dag_id, run_id)
    assert hidden.status_code == 404, hidden.text
    assert (
        hidden.json()["detail"] == f"task instance secret_train.train[-1] of run {run_id} not found"
    )
    assert ui_jobs.names["secret"] not in hidden.text
    assert _names(_shown(airflow_ui, "admin", dag_id, run_id)) == [ui_jobs.names["secret"]]
    assert _task(airflow_ui, None, dag_id, run_id).status_code == 401

    never = _task(airflow_ui, "admin", "public_train", "manual__never")
    assert never.status_code == 404
    assert (
        never.json()["detail"]
        == "task instance public_train.train[-1] of run manual__never not found"
    )
    no_task = _task(airflow_ui, "admin", *RUNS["succeeded"], task_id="evaluate")
    assert no_task.status_code == 404
    mapped_index = _task(airflow_ui, "admin", *RUNS["succeeded"], map_index="3")
    assert mapped_index.status_code == 404  # an unmapped task instance has no [3]
    bad = _task(airflow_ui, "admin", *RUNS["succeeded"], map_index="three")
    assert bad.status_code == 400 and "map_index" in bad.json()["detail"]


def test_a_mapped_task_instance_shows_the_job_of_its_own_map_index(
    airflow_ui: UiServer, ui_jobs: UiJobs, kubeconfig: Path, kube_api: kubernetes.client.ApiClient
) -> None:
    made = _mapped_jobs(airflow_ui, ui_jobs, kubeconfig, kube_api, "api")
    try:
        for index, name in made.items():
            body = _shown(airflow_ui, "viewer", "public_mapped", MAPPED_RUN, "train", str(index))
            assert _names(body) == [name] and body["task"]["map_index"] == index
            assert body["jobs"][0]["task"]["map_index"] == index
        assert _shown(airflow_ui, "viewer", "public_mapped", MAPPED_RUN, "train", "0")["jobs"] == []
        unmapped = _task(airflow_ui, "viewer", "public_mapped", MAPPED_RUN)
        assert unmapped.status_code == 404  # expanded: [0], [1], [2], no [-1]
    finally:
        _delete(kubeconfig, ui_jobs.namespace, *made.values())


def _mapped_jobs(
    server: UiServer,
    ui_jobs: UiJobs,
    kubeconfig: Path,
    kube_api: kubernetes.client.ApiClient,
    tag: str,
) -> dict[int, str]:
    """Succeeded jobs of ``public_mapped.train`` [1] and [2]: map index -> name."""
    hook, namespace = tfjob_hook(kubeconfig), ui_jobs.namespace
    made = {i: f"public-mapped-{i}-{tag}-{_suffix(server)}" for i in (1, 2)}
    for index, name in made.items():
        ui_jobs.replicas.set_fate(name, "Chief", 0, Fate(logs=[f"shard {index} trained"]))
        hook.create(
            manifest(name, namespace, "public_mapped", "train", MAPPED_RUN, map_index=index)
        )
    for name in made.values():
        tfjobs.wait_for(kube_api, namespace, name, tfjobs.has("Succeeded"), timeout=60)
    return made


def _delete(kubeconfig: Path, namespace: str, *names: str) -> None:
    """Delete the jobs a test made, and wait until they are gone: the other tests count jobs."""
    hook = tfjob_hook(kubeconfig)
    for name in names:
        hook.delete(name, namespace)
    eventually(
        lambda: not set(names) & {j["metadata"]["name"] for j in hook.list_jobs(namespace)[0]},
        timeout=60,
    )


def test_a_viewer_sees_the_job_in_the_task_instance_tab(
    airflow_ui: UiServer, ui_jobs: UiJobs, kubeconfig: Path, kube_api: kubernetes.client.ApiClient
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.ui.test_tfjobs_page import ARTIFACTS, _browser_path, login

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    names, url, shot = ui_jobs.names, airflow_ui.url, f"tfjob-tab-{airflow_ui.version}"
    made = _mapped_jobs(airflow_ui, ui_jobs, kubeconfig, kube_api, "ui")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_browser_path())
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                login(page, airflow_ui, "viewer")
                task = _task_view(url, *RUNS["succeeded"])
                page.goto(task)
                page.get_by_role("link", name="TFJob", exact=True).click(timeout=90_000)
                page.wait_for_url("**/tasks/train/plugin/tfjob")  # the UI's own, unencoded
                iframe = page.locator('iframe[title="TFJob"]')
                frame = page.frame_locator('iframe[title="TFJob"]')
                job = frame.locator(f'section.tfjob[data-name="{names["succeeded"]}"]')
                expect(job.locator(".state")).to_have_text("Succeeded", timeout=60_000)
                expect(job.locator("pre.log")).to_contain_text("epoch 2: loss 0.32")
                expect(frame.locator("section.tfjob")).to_have_count(1)  # not the other run's
                inner = iframe.element_handle().content_frame()
                assert inner is not None and inner.url.startswith(f"{url}/tfjob/task?"), inner
                job.locator("select.log-replica").select_option("worker-1")
                expect(job.locator("pre.log")).to_have_text(WORKER_LOG[0])
                page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)

                page.goto(f"{_task_view(url, *RUNS['failed'])}/plugin/tfjob")
                failed = frame.locator(f'section.tfjob[data-name="{names["failed"]}"]')
                expect(failed.locator(".state")).to_have_text("Failed", timeout=60_000)
                expect(failed.locator("pre.failure")).to_contain_text(
                    "worker-1 termination message: CUDA error: out of memory"
                )
                expect(failed.locator('tr[data-replica="worker-1"]')).to_contain_text("Failed")
                expect(failed.locator("pre.log")).to_have_text(
                    "(chief-0 has no pod: not created yet, or deleted)"
                )  # cleanPodPolicy Running deleted it when the job failed
                page.screenshot(path=str(ARTIFACTS / f"{shot}-failed.png"), full_page=True)

                page.goto(f"{_task_view(url, 'public_mapped', MAPPED_RUN)}/mapped/2/plugin/tfjob")
                mapped = frame.locator(f'section.tfjob[data-name="{made[2]}"]')
                expect(mapped.locator("pre.log")).to_contain_text("shard 2 trained", timeout=60_000)
                expect(frame.locator("section.tfjob")).to_have_count(1)
            finally:
                browser.close()
    finally:
        _delete(kubeconfig, ui_jobs.namespace, *made.values())


def _task_view(url: str, dag_id: str, run_id: str, task_id: str = "train") -> str:
    """The Airflow UI's page of a task instance."""
    return f"{url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}"
