"""The states of the task instances behind the listed jobs, read from Airflow's metadata DB
(the api-server, which serves the page, has it)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from airflow_tfjob.model.naming import TaskIdentity

Key = tuple[str, str, str, int]
"""(dag_id, task_id, run_id, map_index)."""


def key(identity: TaskIdentity) -> Key:
    return (identity["dag_id"], identity["task_id"], identity["run_id"], identity["map_index"])


def states(identities: Iterable[TaskIdentity]) -> dict[Key, tuple[str | None, Any]]:
    """``(state, end_date)`` of each task instance that exists, in one query."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    wanted = {key(i) for i in identities}
    if not wanted:
        return {}
    ti = TaskInstance
    query = select(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.state, ti.end_date).where(
        ti.dag_id.in_({k[0] for k in wanted}), ti.run_id.in_({k[2] for k in wanted})
    )
    with create_session() as session:
        rows = session.execute(query).all()
    found: dict[Key, tuple[str | None, datetime.datetime | None]] = {}
    for dag_id, task_id, run_id, map_index, state, end_date in rows:
        if (dag_id, task_id, run_id, map_index) in wanted:
            found[dag_id, task_id, run_id, map_index] = (
                None if state is None else str(state),
                end_date,
            )
    return found
