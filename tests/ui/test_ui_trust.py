"""What the TFJobs page trusts, in a real api-server against the test API server: only the
configured places, only jobs carrying this deployment's labels, access decided from those labels
and a task instance that exists in Airflow's DB. Jobs made by hand with forged annotations or
labels, or put in a namespace the page does not serve, do not exist for either user: the one who
may edit the DAG they name (admin) or the one who may only read it (viewer)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from airflow_tfjob import Chief, TfJob
from airflow_tfjob.model import naming
from tests.airflow_fixtures import tfjob_hook
from tests.cluster import jobs as tfjobs
from tests.kubelet.fates import Fate
from tests.ui.conftest import DEPLOYMENT, UiJobs, UiServer

SECRET = "weights at s3://private-bucket/run-17"
"""What the forged jobs' chiefs print: it must reach nobody through the page."""
ENDED_RUN = "manual__forged-target"
"""A real run of public_train whose task instance failed: a job of it would be an orphan."""


def _job(
    name: str, namespace: str, *, labels: dict[str, str] | None, run_id: str = ENDED_RUN
) -> dict[str, Any]:
    notes = naming.task_annotations("public_train", "train", run_id, -1)
    return TfJob(chief=Chief()).to_manifest(
        name, namespace, image="tf:2", labels=labels or {}, annotations=notes
    )


def _ours(dag_id: str = "public_train", run_id: str = ENDED_RUN) -> dict[str, str]:
    task_id = "train"
    return naming.task_labels(dag_id, task_id, run_id, -1, 1, deployment=DEPLOYMENT)


@pytest.fixture
def elsewhere(kube_api: kubernetes.client.ApiClient) -> Iterator[str]:
    """A namespace the connection reaches but the page is not configured to serve."""
    name = f"elsewhere-{uuid.uuid4().hex[:8]}"
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name, _preload_content=False)


def test_jobs_not_made_by_this_deployment_for_a_real_task_do_not_exist_for_anyone(
    ui_server: UiServer,
    ui_jobs: UiJobs,
    kubeconfig: Path,
    kube_api: kubernetes.client.ApiClient,
    elsewhere: str,
) -> None:
    ui_server.create_run("public_train", ENDED_RUN, task_state="failed")
    hook, here = tfjob_hook(kubeconfig), ui_jobs.namespace
    forged = {  # name -> (namespace, manifest)
        # annotations naming a real task instance, no labels at all
        "forged-notes": (here, _job("forged-notes", here, labels=None)),
        # this deployment's labels, but for another DAG than the annotations name
        "forged-mismatch": (here, _job("forged-mismatch", here, labels=_ours("secret_train"))),
        # labels and annotations agree, on a run this Airflow never had
        "forged-no-run": (
            here,
            _job(
                "forged-no-run", here, labels=_ours(run_id="manual__never"), run_id="manual__never"
            ),
        ),
        # everything right, in a namespace the page does not serve
        "forged-elsewhere": (elsewhere, _job("forged-elsewhere", elsewhere, labels=_ours())),
    }
    genuine = "public-train-genuine"  # the same, made right: the rule does tell them apart
    for name in [*forged, genuine]:
        ui_jobs.replicas.set_fate(name, "Chief", 0, Fate(exit_code=None, logs=[SECRET]))
    uids = {
        name: hook.create(manifest)["metadata"]["uid"] for name, (_, manifest) in forged.items()
    }
    hook.create(_job(genuine, here, labels=_ours()))
    try:
        for name in ("forged-notes", "forged-mismatch", "forged-no-run", genuine):
            tfjobs.wait_for(kube_api, here, name, tfjobs.has("Running"), timeout=60)
        for user in ("admin", "viewer"):
            listed = _listed(ui_server, user)
            assert genuine in listed and not set(forged) & listed, (user, listed)
            for name, (namespace, _) in forged.items():
                path = f"/tfjob/api/jobs/tfjob_test/{namespace}/{name}"
                detail = ui_server.get(path, user)
                assert detail.status_code == 404, (user, name, detail.text)
                assert SECRET not in detail.text
                refused = ui_server.request("DELETE", path, user)
                assert refused.status_code == 404, (user, name, refused.text)
        shown = ui_server.get(f"/tfjob/api/jobs/tfjob_test/{here}/{genuine}", "viewer")
        assert shown.status_code == 200 and shown.json()["log"] == [SECRET]
        assert shown.json()["orphan"] and shown.json()["can_delete"] is False
        path = f"/tfjob/api/jobs/tfjob_test/{here}/{genuine}"
        assert ui_server.request("DELETE", path, "viewer").status_code == 403
        assert ui_server.request("DELETE", path, "admin").status_code == 200
        for name, (namespace, _) in forged.items():  # nothing forged was deleted
            assert hook.get(name, namespace)["metadata"]["uid"] == uids[name]
            assert not hook.get(name, namespace)["metadata"].get("deletionTimestamp")
    finally:
        for name, (namespace, _) in forged.items():
            hook.delete(name, namespace)
        hook.delete(genuine, here)


def _listed(server: UiServer, user: str) -> set[str]:
    response = server.get("/tfjob/api/jobs", user)
    assert response.status_code == 200, response.text
    return {row["name"] for target in response.json()["targets"] for row in target["jobs"]}
