"""The TFJobs page's API in a real api-server, against the test API server with simulated jobs:
what each user may see, the detail view, and an unreachable cluster said plainly."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import CHIEF_LOG, UiJobs, UiServer


def _jobs(server: UiServer, user: str) -> tuple[dict[str, Any], dict[str, Any]]:
    response = server.get("/tfjob/api/jobs", user)
    assert response.status_code == 200, response.text
    targets = {t["conn_id"]: t for t in response.json()["targets"]}
    return targets["tfjob_test"], targets["tfjob_down"]


def test_the_list_shows_each_user_the_jobs_of_dags_they_may_read(
    ui_server: UiServer, ui_jobs: UiJobs
) -> None:
    test, down = _jobs(ui_server, "admin")
    assert test["namespace"] == ui_jobs.namespace and "error" not in test
    by_name = {row["name"]: row for row in test["jobs"]}
    assert set(by_name) == set(ui_jobs.names.values())

    viewer, _ = _jobs(ui_server, "viewer")
    assert {row["name"] for row in viewer["jobs"]} == set(ui_jobs.names.values()) - {
        ui_jobs.names["secret"]
    }

    ok, bad, live = (by_name[ui_jobs.names[k]] for k in ("succeeded", "failed", "running"))
    assert (ok["state"], bad["state"], live["state"]) == ("Succeeded", "Failed", "Running")
    assert ok["replicas"]["Chief"] == {"total": 1, "active": 0, "succeeded": 1, "failed": 0}
    assert bad["replicas"]["Worker"]["failed"] == 1
    assert live["replicas"]["Chief"]["active"] == 1
    assert ok["task"] == {
        "dag_id": "public_train",
        "task_id": "train",
        "run_id": "manual__2026-11-01T00:00:00+00:00",
        "map_index": -1,
    }
    assert ok["task_instance_path"] == (
        "/dags/public_train/runs/manual__2026-11-01T00%3A00%3A00%2B00%3A00/tasks/train"
    )
    assert ok["duration_seconds"] >= 0 and live["age_seconds"] >= live["duration_seconds"] >= 0

    assert down["jobs"] == []
    assert down["error"].startswith("cannot reach the cluster of connection 'tfjob_down'")
    assert "not-a-real-token" not in down["error"]


def test_the_detail_shows_conditions_replicas_and_the_chief_log(
    ui_server: UiServer, ui_jobs: UiJobs
) -> None:
    ok = ui_server.get(
        f"/tfjob/api/jobs/tfjob_test/{ui_jobs.namespace}/{ui_jobs.names['succeeded']}", "viewer"
    )
    assert ok.status_code == 200, ok.text
    detail = ok.json()
    kinds = [c["type"] for c in detail["conditions"]]
    assert kinds[0] == "Created" and kinds[-1] == "Succeeded"
    assert detail["log_replica"] == "chief-0"
    assert detail["log"] == CHIEF_LOG

    bad = ui_server.get(
        f"/tfjob/api/jobs/tfjob_test/{ui_jobs.namespace}/{ui_jobs.names['failed']}", "viewer"
    )
    pods = {p["replica"]: p for p in bad.json()["pods"]}
    assert pods["worker-1"]["exit_code"] == 1 and pods["worker-1"]["phase"] == "Failed"
    assert "chief-0" not in pods  # cleanPodPolicy Running: deleted when the job failed
    assert bad.json()["conditions"][-1]["type"] == "Failed"


def test_what_a_user_may_not_read_does_not_exist_for_them(
    ui_server: UiServer, ui_jobs: UiJobs
) -> None:
    secret = f"/tfjob/api/jobs/tfjob_test/{ui_jobs.namespace}/{ui_jobs.names['secret']}"
    assert ui_server.get(secret, "viewer").status_code == 404
    assert ui_server.get(secret, "admin").status_code == 200
    assert ui_server.get(secret, None).status_code == 401
    assert ui_server.get("/tfjob/api/jobs", None).status_code == 401
    other = f"/tfjob/api/jobs/kubernetes_default/{ui_jobs.namespace}/{ui_jobs.names['secret']}"
    refused = ui_server.get(other, "admin")
    assert refused.status_code == 404 and "ui_connections" in refused.json()["detail"]
