"""Triggers attached to real task instances: a metadata DB and Airflow's execution API."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_fixtures import run_dag_file, task_instance, write_dag

EMPTY_TASK = """
from airflow.providers.standard.operators.empty import EmptyOperator
EmptyOperator(task_id="train")
"""


@contextlib.contextmanager
def execution_api(ti: Any) -> Iterator[None]:
    """What the triggerer gives its triggers: Task SDK calls answered by Airflow's execution API
    (here in-process, on the test's metadata DB)."""
    import psutil
    import structlog
    from airflow.sdk.execution_time.supervisor import (
        InProcessSupervisorComms,
        InProcessTestSupervisor,
        set_supervisor_comms,
    )

    supervisor = InProcessTestSupervisor(
        id=ti.id,
        pid=os.getpid(),
        process=psutil.Process(),
        process_log=structlog.get_logger(logger_name="task").bind(),
        client=InProcessTestSupervisor._api_client(),
    )
    supervisor.comms = InProcessSupervisorComms(supervisor=supervisor)
    with set_supervisor_comms(supervisor.comms):
        yield


def set_state(ti: Any, state: str) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(TaskInstance).where(TaskInstance.id == ti.id).values(state=state))


@pytest.fixture(scope="module")
def recorded_ti(airflow_db: Path) -> Any:
    """A real task instance in the metadata DB, for a trigger to be attached to (each test sets
    its state: what Airflow says when the trigger is removed)."""
    return task_instance(run_dag_file(write_dag(airflow_db, EMPTY_TASK)[1]), "train")


@pytest.fixture
def airflow_ti(recorded_ti: Any) -> Iterator[Any]:
    """``recorded_ti``, with Airflow's execution API answering for the whole test."""
    with execution_api(recorded_ti):
        yield recorded_ti
