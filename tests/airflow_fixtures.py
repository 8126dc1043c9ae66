"""pytest plugin: a migrated Airflow metadata DB (SQLite) and a way to run a DAG with ``dag.test()``.

``dag.test()`` needs the DAG in the configured dags folder (it serializes it from there), so
``run_dag`` writes the test's DAG source into a session dags folder, imports it and runs it.
"""

from __future__ import annotations

import datetime
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


LOGICAL_DATE = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
"""A fixed logical date: the same run_id (and TFJob name) on every ``dag.test()`` of a DAG."""

MAIN = """

if __name__ == "__main__":
    when = datetime.datetime.fromisoformat({logical!r})
    dag.test(logical_date=when, run_after=when)
"""


def write_dag(folder: Path, body: str, **values: Any) -> tuple[str, Path]:
    """Write a DAG file whose body (under ``with DAG(...)``) sees ``values`` as UPPER-case names."""
    dag_id = f"test_{uuid.uuid4().hex[:10]}"
    source = DAG_HEADER + "\n".join(f"{k.upper()} = {v!r}" for k, v in values.items())
    source += f"\n\nwith DAG({dag_id!r}, schedule=None, start_date=START) as dag:\n"
    source += textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n"
    source += MAIN.format(logical=LOGICAL_DATE.isoformat())
    path = folder / f"{dag_id}.py"
    path.write_text(source)
    return dag_id, path


def run_dag_file(path: Path, logical_date: datetime.datetime | None = None) -> Any:
    """Import a DAG file and run its DAG with ``dag.test()``; return the DagRun."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if logical_date is None:
        return module.dag.test()
    return module.dag.test(logical_date=logical_date, run_after=logical_date)


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., Any]:
    """``run_dag(body, **values)``: write a DAG (see ``write_dag``), run it, return the DagRun."""

    def run(body: str, **values: Any) -> Any:
        return run_dag_file(write_dag(airflow_db, body, **values)[1])

    return run


OPERATOR = """
TFJobOperator(
    task_id="train",
    tfjob=TfJob(chief=Chief(), worker=Worker(replicas=2)),
    image="tf:2",
    namespace=NAMESPACE,
    kubernetes_conn_id=None,
    config_file=KUBECONFIG,
    poll_interval=1,
{more})
"""


def operator_body(code: str = "", /, **arguments: Any) -> str:
    """A DAG body with one ``TFJobOperator`` task "train" (chief + 2 workers, image tf:2, the
    test's NAMESPACE and KUBECONFIG) plus ``arguments`` (as values) and ``code`` (as written)."""
    more = "".join(f"    {key}={value!r},\n" for key, value in arguments.items())
    return OPERATOR.format(more=more + (f"    {code}\n" if code else ""))


def tfjob_hook(kubeconfig: Path) -> Any:
    """A ``TFJobHook`` on a kubeconfig file, without an Airflow connection."""
    from airflow_tfjob.hooks.tfjob import TFJobHook

    return TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))


RESULT_KEYS = {
    "name",
    "namespace",
    "uid",
    "state",
    "conditions",
    "replica_statuses",
    "start_time",
    "completion_time",
    "output",
}
"""The keys of a TFJobOperator's XCom ``return_value``, on every backend."""


def start_dag_file(path: Path, log: Path) -> subprocess.Popen[bytes]:
    """Run a DAG file (its ``dag.test()``) as a separate process, as a worker would run a task;
    output to ``log``. In a session of its own, so a test can kill the whole group."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def task_instance(dagrun: Any, task_id: str) -> Any:
    """The task instance of ``task_id`` in a finished DagRun."""
    (ti,) = [ti for ti in dagrun.get_task_instances() if ti.task_id == task_id]
    return ti
