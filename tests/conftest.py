"""Test session set-up: an isolated AIRFLOW_HOME, and the test-ground plugins (a real
kube-apiserver, the simulated training operator and the fault proxy)."""

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

pytest_plugins = ["tests.cluster.fixtures", "tests.sim.fixtures", "tests.airflow_fixtures"]
