"""Orphans on the TFJobs page (a real api-server and its metadata DB): each job shows its task
instance's state, a job that outlives its task instance is marked, and only a user who may edit
the DAG gets the delete action, which is logged with their name. Jobs of another deployment are
neither shown nor deletable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes

from airflow_tfjob import Chief, TfJob
from airflow_tfjob.model import naming
from tests.airflow_fixtures import tfjob_hook
from tests.cluster import jobs as tfjobs
from tests.kubelet.fates import RUNS_FOR_EVER
from tests.ui.conftest import UiJobs, UiServer
from tests.waiting import eventually


def _rows(server: UiServer, user: str) -> dict[str, dict[str, Any]]:
    response = server.get("/tfjob/api/jobs", user)
    assert response.status_code == 200, response.text
    (test,) = [t for t in response.json()["targets"] if t["conn_id"] == "tfjob_test"]
    return {row["name"]: row for row in test["jobs"]}


def _orphan(name: str, namespace: str, run_id: str, deployment: str) -> dict[str, Any]:
    labels = naming.task_labels("public_train", "train", run_id, -1, 1, deployment=deployment)
    notes = naming.task_annotations("public_train", "train", run_id, -1)
    return TfJob(chief=Chief()).to_manifest(
        name, namespace, image="tf:2", labels=labels, annotations=notes
    )


def test_orphans_are_marked_and_only_an_editor_may_delete_one(
    ui_server: UiServer,
    ui_jobs: UiJobs,
    kubeconfig: Path,
    kube_api: kubernetes.client.ApiClient,
) -> None:
    airflow = str(Path(sys.executable).parent / "airflow")
    done = subprocess.run(  # a real task instance that ended: success
        [airflow, "dags", "test", "public_train"],
        env=ui_server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    (run,) = set(re.findall(r"DagRun Finished: dag_id=public_train, .*?run_id=([^,]+),", output))
    hook, namespace = tfjob_hook(kubeconfig), ui_jobs.namespace
    for name in ("public-train-orphan", "public-train-elsewhere"):
        ui_jobs.replicas.set_fate(name, "Chief", 0, RUNS_FOR_EVER)
    hook.create(_orphan("public-train-orphan", namespace, run, "localhost-8080"))
    hook.create(_orphan("public-train-elsewhere", namespace, run, "elsewhere"))
    try:
        for name in ("public-train-orphan", "public-train-elsewhere"):
            tfjobs.wait_for(kube_api, namespace, name, tfjobs.has("Running"), timeout=60)
        admin, viewer = _rows(ui_server, "admin"), _rows(ui_server, "viewer")
        orphan = admin["public-train-orphan"]
        assert orphan["task_state"] == "success" and orphan["task_ended"]
        mark = r"task success \d+ s ago; job still running"
        assert re.fullmatch(mark, orphan["orphan"]), orphan
        assert orphan["can_delete"] is True
        assert re.fullmatch(mark, viewer["public-train-orphan"]["orphan"])
        assert viewer["public-train-orphan"]["can_delete"] is False
        assert "public-train-elsewhere" not in admin  # another deployment's job
        live = admin[ui_jobs.names["running"]]  # its task failed: an orphan too
        assert live["task_state"] == "failed", live
        assert re.fullmatch(r"task failed \d+ s ago; job still running", live["orphan"]), live
        done_ok = admin[ui_jobs.names["succeeded"]]
        assert done_ok["orphan"] is None and done_ok["can_delete"] is False

        path = f"/tfjob/api/jobs/tfjob_test/{namespace}"
        refused = ui_server.request("DELETE", f"{path}/public-train-orphan", "viewer")
        assert refused.status_code == 403, refused.text
        assert "needs edit access to DAG 'public_train'" in refused.json()["detail"]
        assert ui_server.request("DELETE", f"{path}/public-train-orphan", None).status_code == 401
        elsewhere = ui_server.request("DELETE", f"{path}/public-train-elsewhere", "admin")
        assert elsewhere.status_code == 404
        finished = ui_server.request("DELETE", f"{path}/{ui_jobs.names['succeeded']}", "admin")
        assert finished.status_code == 409, finished.text
        uid = hook.get("public-train-orphan", namespace)["metadata"]["uid"]

        deleted = ui_server.request("DELETE", f"{path}/public-train-orphan", "admin")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["reason"] == (
            "its task instance is success; the job is still Running"
        )
        eventually(
            lambda: "public-train-orphan" not in {j["metadata"]["name"] for j in hook.list_jobs(
                namespace)[0]},
            timeout=30,
        )  # fmt: skip
        assert (
            f"User admin deleted orphaned TFJob {namespace}/public-train-orphan (uid {uid}) of "
            f"task instance public_train.train[-1] of run {run} from the TFJobs page"
        ) in ui_server.log.read_text()
        assert {j["metadata"]["name"] for j in hook.list_jobs(namespace)[0]} >= {
            "public-train-elsewhere",
            *ui_jobs.names.values(),
        }
    finally:
        for name in ("public-train-orphan", "public-train-elsewhere"):
            hook.delete(name, namespace)


def test_an_editor_deletes_an_orphan_from_the_page_in_a_browser(
    ui_server: UiServer,
    ui_jobs: UiJobs,
    kubeconfig: Path,
    kube_api: kubernetes.client.ApiClient,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.ui.test_tfjobs_page import ARTIFACTS, _browser_path, login

    hook, namespace, name = tfjob_hook(kubeconfig), ui_jobs.namespace, "public-train-abandoned"
    ui_server.create_run("public_train", "manual__abandoned", task_state="failed")
    ui_jobs.replicas.set_fate(name, "Chief", 0, RUNS_FOR_EVER)
    hook.create(_orphan(name, namespace, "manual__abandoned", "localhost-8080"))
    try:
        tfjobs.wait_for(kube_api, namespace, name, tfjobs.has("Running"), timeout=60)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_browser_path())
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                login(page, ui_server, "admin", "/tfjob/")  # the login redirects there
                page.wait_for_url("**/tfjob/", timeout=90_000)
                row = page.locator(f'tr.job[data-name="{name}"]')
                expect(row.locator(".orphan")).to_contain_text(
                    re.compile(r"task failed \d+ s ago; job still running"), timeout=30_000
                )  # the page refreshes every 5 s; a busy machine may need a few
                page.screenshot(path=str(ARTIFACTS / "tfjobs-orphan.png"), full_page=True)
                page.on("dialog", lambda dialog: dialog.accept())  # "Delete TFJob ...?"
                row.locator("button.delete").click()
                expect(row).to_have_count(0, timeout=30_000)
            finally:
                browser.close()
        assert name not in {j["metadata"]["name"] for j in hook.list_jobs(namespace)[0]}
        assert f"User admin deleted orphaned TFJob {namespace}/{name} " in ui_server.log.read_text()
    finally:
        hook.delete(name, namespace)
