"""Dry run: print the TFJob a task would submit, as YAML, without contacting any cluster.

``python -m airflow_tfjob render DAG_FILE TASK_ID [--run-id RUN_ID] [--namespace NS] [--api API]``

The DAG file is parsed as the dag processor would, the task's templates are rendered with a
stand-in context (``ds``, ``run_id``, ``params``, ...), and the manifest is built by the same code
``execute`` uses, so it shows exactly what a run would send. Only the manifest goes to stdout
(``render ... > job.yaml`` is a clean file); Airflow's logs and warnings go to stderr. A wrong job
description is one line on stderr, without a traceback, and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

DEFAULT_RUN_ID = "manual__dry-run"
_SPEC_ERROR = re.compile(r"^(?:[\w.]+\.)?(TFJobSpec\w*: .*)$")
"""The last line of a traceback that ends in a spec error: all a user needs of it."""


class RenderError(Exception):
    """What the dry run cannot do, as one message for stderr."""


def _import_error(dag_file: Path, errors: dict[str, str]) -> str:
    """The DAG file's import error: a spec error as its one line, anything else in full."""
    shown = []
    for text in errors.values():
        last = text.strip().splitlines()[-1] if text.strip() else text
        spec = _SPEC_ERROR.match(last)
        shown.append(spec.group(1) if spec else text.rstrip())
    return f"cannot import {dag_file}: " + "\n".join(shown)


def _load_task(dag_file: Path, task_id: str) -> Any:
    import logging

    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]  # Airflow 3.1

    # its stdlib loggers too (the importer logs the traceback), not only Airflow's structlog ones
    logging.getLogger("airflow.dag_processing").setLevel(logging.CRITICAL)
    if not dag_file.is_file():
        what = "is a directory, not a DAG file" if dag_file.is_dir() else "does not exist"
        raise RenderError(f"DAG file {dag_file} {what}")
    bag = DagBag(dag_folder=str(dag_file), safe_mode=False)
    if bag.import_errors:
        raise RenderError(_import_error(dag_file, bag.import_errors))
    for dag in bag.dags.values():
        if task_id in dag.task_dict:
            return dag.task_dict[task_id]
    if not bag.dags:
        raise RenderError(f"{dag_file} defines no DAG")
    tasks = sorted({t for dag in bag.dags.values() for t in dag.task_dict})
    raise RenderError(f"no task {task_id!r} in {dag_file} (its tasks: {', '.join(tasks)})")


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
    dag_file: Path,
    task_id: str,
    *,
    run_id: str = DEFAULT_RUN_ID,
    namespace: str | None = None,
    api: str | None = None,
) -> str:
    """The YAML manifest of ``task_id`` in ``dag_file``; ``namespace`` is used when the task
    sets none (where a run would take the connection's); ``api`` (else the task's ``api``):
    ``trainjob`` shows the Trainer v2 TrainJob, its entry point included."""
    from airflow_tfjob.model import TFJobSpecError
    from airflow_tfjob.operators.tfjob import TFJobOperator

    task = _load_task(dag_file, task_id)
    if not isinstance(task, TFJobOperator):
        raise RenderError(f"task {task_id!r} is a {type(task).__name__}, not a TFJobOperator")
    context = dry_run_context(task, run_id)
    task.render_template_fields(context)  # type: ignore[arg-type]
    try:
        task._check_arguments(rendered=True)  # what execute() checks first
        api = api or task.api
        manifest, _ = task.build_manifest(context, namespace, api)  # type: ignore[arg-type]
        if api == "trainjob":
            from airflow_tfjob.rules.trainjob import to_trainjob

            manifest = to_trainjob(manifest)
    except TFJobSpecError as exc:
        raise RenderError(f"task {task_id!r} in {dag_file}: {type(exc).__name__}: {exc}") from None
    import yaml

    return str(yaml.dump(manifest, Dumper=_block_dumper(), sort_keys=False))


def _block_dumper() -> type:
    """``yaml.SafeDumper`` writing multi-line strings (an entry point, a ``python -c``
    program) as ``|`` blocks, as a person would."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Everything written to stdout meanwhile (Airflow's logs and warnings, print() in a DAG
    file, child processes) goes to stderr: stdout is for the manifest alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def parser() -> argparse.ArgumentParser:
    """The ``render`` sub-command's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_tfjob render", description=__doc__.splitlines()[0]
    )
    parser.add_argument("dag_file", type=Path, help="the DAG file (a .py file)")
    parser.add_argument("task_id", help="the id of a TFJobOperator task")
    parser.add_argument(
        "--run-id", default=DEFAULT_RUN_ID, help="run_id used for the job name and labels"
    )
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help="namespace when the task sets none (a run would take the connection's); "
        "default: 'default'",
    )
    parser.add_argument(
        "--api",
        choices=("tfjob", "trainjob"),
        help="the API a run would submit to; default: the task's api, else tfjob",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m airflow_tfjob render``: the manifest on stdout, exit code 0;
    else one message on stderr and exit code 1."""
    options = parser().parse_args(argv)
    # before Airflow is imported: warnings and worse only, and not the DAG processor's own
    # report of an import error, which is shown below (a spec error as its one line)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("AIRFLOW__LOGGING__NAMESPACE_LEVELS", "airflow.dag_processing=CRITICAL")
    try:
        with _stdout_to_stderr():
            text = render(
                options.dag_file,
                options.task_id,
                run_id=options.run_id,
                namespace=options.namespace,
                api=options.api,
            )
    except RenderError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(text)
    return 0
