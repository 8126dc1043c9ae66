"""The task-instance tab without a server: the plugin's hrefs (relative, so that a sub-path of
``[api] base_url`` is kept), the tab's map index as Airflow's UI fills it in, and the failure
report rebuilt from a failed job's pods as the task tells it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import HTTPException

from airflow_tfjob.rules import status
from airflow_tfjob.ui import app, rows
from airflow_tfjob.ui.plugin import TFJobPlugin


def test_every_view_href_is_relative_and_the_tab_names_its_task_instance() -> None:
    views = {view["destination"]: view for view in TFJobPlugin.external_views}
    assert set(views) == {"nav", "task_instance"}
    assert all(not view["href"].startswith("/") for view in views.values())
    tab = views["task_instance"]
    for placeholder in ("{DAG_ID}", "{RUN_ID}", "{TASK_ID}", "{MAP_INDEX}"):
        assert placeholder in tab["href"]
    assert tab["href"].startswith("tfjob/task?") and tab["url_route"]


@pytest.mark.parametrize(
    ("given", "index"), [("{MAP_INDEX}", -1), ("", -1), (" -1 ", -1), ("0", 0), ("12", 12)]
)
def test_the_tab_reads_an_unfilled_map_index_as_unmapped(given: str, index: int) -> None:
    assert app._map_index(given) == index


def test_a_map_index_that_is_no_number_is_refused() -> None:
    with pytest.raises(HTTPException) as refused:
        app._map_index("two")
    assert refused.value.status_code == 400


def _pod(replica: str, exit_code: int, finished: str, message: str = "") -> dict[str, Any]:
    kind, _, index = replica.partition("-")
    terminated = {"exitCode": exit_code, "finishedAt": finished, "message": message}
    return {
        "metadata": {
            "name": f"train-{replica}",
            "uid": f"uid-{replica}",
            "labels": {status.REPLICA_TYPE_LABEL: kind, status.REPLICA_INDEX_LABEL: index},
        },
        "status": {
            "phase": "Failed" if exit_code else "Succeeded",
            "containerStatuses": [{"name": "tensorflow", "state": {"terminated": terminated}}],
        },
    }


FAILED = {
    "metadata": {"name": "train", "namespace": "ml"},
    "spec": {"tfReplicaSpecs": {"Chief": {"replicas": 1}, "Worker": {"replicas": 2}}},
    "status": {
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "TFJobFailed",
                "message": "worker 1 failed",
            }
        ]
    },
}


def test_the_failure_report_is_the_tasks_with_the_earliest_failure_first() -> None:
    later = _pod("worker-0", 2, "2026-12-06T10:00:09Z", "disk full")
    earliest = _pod("worker-1", 1, "2026-12-06T10:00:05Z")
    pods = [later, _pod("chief-0", 0, "2026-12-06T10:00:01Z"), earliest]
    tails: list[str] = []

    def tail(failed: status.ReplicaOutcome) -> list[str]:
        tails.append(failed.pod)
        return ["Traceback (most recent call last):", "OSError: no data"]

    assert rows.failure_report(FAILED, pods, tail) == (
        "TFJob ml/train failed: TFJobFailed: worker 1 failed\n"
        "Failed replicas: worker-1 (exit code 1), worker-0 (exit code 2)\n"
        "worker-1 last log lines:\n"
        "Traceback (most recent call last):\n"
        "OSError: no data"
    )  # what report.failure_message says in the task's log
    assert tails == ["train-worker-1"]  # the earliest failure had no message: its log


def test_a_job_that_did_not_fail_has_no_failure_report() -> None:
    running = {**FAILED, "status": {"conditions": [{"type": "Running", "status": "True"}]}}
    assert rows.failure_report(running, [_pod("worker-1", 1, "2026-12-06T10:00:05Z")], list) is None


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [("", ""), ("http://localhost:8080", ""), ("https://example.com/airflow/", "/airflow")],
)
def test_the_monitor_link_is_below_the_uis_path(
    base_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "TFJob monitor" extra link is a path on the Airflow UI's host: under a sub-path of
    ``[api] base_url`` it must carry it, as the page itself is mounted there."""
    from airflow_tfjob.operators import links
    from airflow_tfjob.rules.jobref import JobRef

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", base_url)
    urls = links.urls(JobRef("train-1", "ml", "u-1"), "k8s")
    assert urls["TFJob monitor"] == f"{prefix}/tfjob/?conn_id=k8s&namespace=ml&name=train-1"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("", "localhost-8080"),
        ("http://localhost:8080", "localhost-8080"),
        ("https://airflow.example.com/airflow/", "airflow.example.com"),
        ("https://10.0.0.7:8443/", "10.0.0.7-8443"),
    ],
)
def test_the_default_deployment_is_the_host_of_the_uis_base_url(
    base_url: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[tfjob] deployment`` unset: the host (and port) users reach this Airflow at, with the
    path of a sub-path deployment left out (the UI tests set it explicitly)."""
    from airflow_tfjob.operators import _settings

    monkeypatch.delenv("AIRFLOW__TFJOB__DEPLOYMENT", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", base_url)
    assert _settings.deployment() == expected
