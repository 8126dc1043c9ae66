"""Dry run: print the TFJob a task would submit, as YAML, without contacting any cluster.

``python -m airflow_tfjob render DAG_FILE TASK_ID [--run-id RUN_ID] [--namespace NS]``

The DAG file is parsed as the dag processor would, the task's templates are rendered with a
stand-in context (``ds``, ``run_id``, ``params``, ...), and the manifest is built by the same code
``execute`` uses, so it shows exactly what a run would send.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

DEFAULT_RUN_ID = "manual__dry-run"


def _load_task(dag_file: Path, task_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file), safe_mode=False)
    if bag.import_errors:
        raise SystemExit(f"cannot import {dag_file}:\n" + "\n".join(bag.import_errors.values()))
    for dag in bag.dags.values():
        if task_id in dag.task_dict:
            return dag.task_dict[task_id]
    raise SystemExit(f"no task {task_id!r} in {dag_file} (DAGs: {', '.join(bag.dags) or 'none'})")


def dry_run_context(task: Any, run_id: str) -> dict[str, Any]:
    """Enough of a task context for templates and naming, with fixed, obviously fake values."""
    import pendulum

    logical = pendulum.datetime(2000, 1, 1, tz="UTC")
    ti = SimpleNamespace(dag_id=task.dag_id, task_id=task.task_id, map_index=-1, try_number=1)
    return {
        "dag": task.dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "run_id": run_id,
        "ds": logical.to_date_string(),
        "ds_nodash": logical.format("YYYYMMDD"),
        "ts": logical.isoformat(),
        "logical_date": logical,
        "params": dict(task.params or {}),
        "var": {},
        "conn": {},
        "macros": None,
    }


def render(
    dag_file: Path, task_id: str, *, run_id: str = DEFAULT_RUN_ID, namespace: str | None = None
) -> str:
    """The YAML manifest of ``task_id`` in ``dag_file``."""
    import yaml

    from airflow_tfjob.operators.tfjob import TFJobOperator

    task = _load_task(dag_file, task_id)
    if not isinstance(task, TFJobOperator):
        raise SystemExit(f"task {task_id!r} is a {type(task).__name__}, not a TFJobOperator")
    context = dry_run_context(task, run_id)
    task.render_template_fields(context)  # type: ignore[arg-type]
    manifest, _ = task.build_manifest(context, namespace)  # type: ignore[arg-type]
    return str(yaml.safe_dump(manifest, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m airflow_tfjob render``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_tfjob render", description=__doc__.splitlines()[0]
    )
    parser.add_argument("dag_file", type=Path)
    parser.add_argument("task_id")
    parser.add_argument(
        "--run-id", default=DEFAULT_RUN_ID, help="run_id used for the job name and labels"
    )
    parser.add_argument(
        "--namespace", help="namespace when the task sets none (default: 'default')"
    )
    options = parser.parse_args(argv)
    os.environ.setdefault(
        "AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"
    )  # before airflow is imported
    sys.stdout.write(
        render(
            options.dag_file, options.task_id, run_id=options.run_id, namespace=options.namespace
        )
    )
    return 0
