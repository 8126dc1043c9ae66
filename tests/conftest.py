"""Test session set-up: an isolated AIRFLOW_HOME, and the test-ground plugins (a real
kube-apiserver, the training operator, the process kubelet and the fault proxy)."""

from __future__ import annotations

import os
import tempfile

# Before anything imports airflow: never touch the developer's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-tfjob-tests-"))
os.environ.setdefault(
    "AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.environ["AIRFLOW_HOME"], "dags")
)
os.makedirs(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], exist_ok=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

pytest_plugins = [
    "tests.cluster.fixtures",
    "tests.kubelet.fixtures",
    "tests.faults.fixtures",
    "tests.airflow_fixtures",
]


SLOW_FIXTURES = frozenset(
    {
        "kube_cluster",  # a real kube-apiserver (and etcd) for the session
        "airflow_db",  # a migrated metadata DB, dag.test() runs
        "run_dag",
        "live",  # the live deployment
        "ui_server",
        "local_run",
    }
)
"""A test using any of these starts processes or an API server: ``slow``. The rest (unit, spec,
rules, argument checks) is the inner loop: ``pytest -m "not slow"``."""
SLOW_PATHS = (
    "tests/local/",
    "tests/live/",
    "tests/examples/",
    "tests/training/",
    "tests/campaign/test_campaign",
)


def pytest_collection_modifyitems(config: object, items: list[object]) -> None:
    import pytest

    for item in items:
        path = str(getattr(item, "path", ""))
        needs = set(getattr(item, "fixturenames", ()))
        if needs & SLOW_FIXTURES or any(part in path for part in SLOW_PATHS):
            item.add_marker(pytest.mark.slow)  # type: ignore[attr-defined]
