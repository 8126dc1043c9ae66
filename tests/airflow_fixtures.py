"""pytest plugin: a migrated Airflow metadata DB (SQLite) and a way to run a DAG with ``dag.test()``.

``dag.test()`` needs the DAG in the configured dags folder (it serializes it from there), so
``run_dag`` writes the test's DAG source into a session dags folder, imports it and runs it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DAG_HEADER = """\
import datetime
from airflow.sdk import DAG
from airflow_tfjob import *
from airflow_tfjob.operators.tfjob import TFJobOperator

START = datetime.datetime(2026, 1, 1)
"""


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """``airflow db migrate`` once per session, in the session's AIRFLOW_HOME; returns the dags folder."""
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return dags


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., Any]:
    """``run_dag(body, **values)``: write a DAG file whose body (indented under ``with DAG(...)``)
    is formatted with ``values``, run it with ``dag.test()``, return the DagRun."""

    def run(body: str, **values: Any) -> Any:
        dag_id = f"test_{uuid.uuid4().hex[:10]}"
        source = DAG_HEADER + "\n".join(f"{k.upper()} = {v!r}" for k, v in values.items())
        source += f"\n\nwith DAG({dag_id!r}, schedule=None, start_date=START) as dag:\n"
        source += textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n"
        path = airflow_db / f"{dag_id}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(dag_id, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.dag.test()

    return run


def task_instance(dagrun: Any, task_id: str) -> Any:
    """The task instance of ``task_id`` in a finished DagRun."""
    (ti,) = [ti for ti in dagrun.get_task_instances() if ti.task_id == task_id]
    return ti
