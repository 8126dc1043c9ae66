"""``TFJobEventCatchUpOperator`` through real Airflow (``dag.test()``, SQLite): an event stored
after the run was queued and taken by no run of the DAG gets a catch-up event, which queues the
DAG's next run; with nothing left behind the task is skipped and stores nothing."""

from __future__ import annotations

import datetime
import importlib.util
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_tfjob.model.errors import TFJobSpecError
from airflow_tfjob.operators.catch_up import CATCH_UP_KEY, TFJobEventCatchUpOperator, leftovers
from tests.airflow_fixtures import task_instance

DAG_FILE = """
import datetime

from airflow.providers.common.compat.sdk import AirflowSkipException
from airflow.sdk import DAG, Asset, task

from airflow_tfjob.operators.catch_up import TFJobEventCatchUpOperator

MODELS = Asset({asset!r})

with DAG({dag_id!r}, schedule=[MODELS], start_date=datetime.datetime(2026, 1, 1), catchup=False,
         is_paused_upon_creation=False) as dag:

    @task(outlets=[MODELS])
    def a_job_finishes_while_this_run_is_queued(*, params=None, outlet_events=None):
        # stands in for the watcher's event of a job that finished after this run was queued
        if not params["finish"]:
            raise AirflowSkipException("no job finished")
        outlet_events[MODELS].extra = {{"payload": {{"name": "late-job"}}}}

    register = a_job_finishes_while_this_run_is_queued()
    register >> TFJobEventCatchUpOperator(task_id="catch_up", asset=MODELS)
"""


def _dag(folder: Path) -> tuple[Any, str, str]:
    dag_id = f"test_catch_up_{uuid.uuid4().hex[:8]}"
    asset = f"tfjob-models-{dag_id}"
    path = folder / f"{dag_id}.py"
    path.write_text(textwrap.dedent(DAG_FILE).format(dag_id=dag_id, asset=asset))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag, dag_id, asset


def _events(asset: str) -> list[Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        query = query.where(AssetModel.name == asset)
        return [
            SimpleNamespace(id=e.id, extra=e.extra, timestamp=e.timestamp)
            for e in session.scalars(query.order_by(AssetEvent.id))
        ]


def _queued(dag_id: str) -> int:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        where = AssetDagRunQueue.target_dag_id == dag_id
        return int(session.scalar(select(func.count()).where(where)) or 0)


@pytest.mark.timeout(300)
def test_an_event_left_behind_queues_the_next_run_and_none_left_stores_nothing(
    airflow_db: Path,
) -> None:
    dag, dag_id, asset = _dag(airflow_db)

    first = dag.test(run_conf={"finish": True})
    catch_up = task_instance(first, "catch_up")
    assert catch_up.state == "success"
    late, ours = _events(asset)
    assert late.extra == {"payload": {"name": "late-job"}}
    assert late.timestamp > first.run_after  # stored after the run was queued: not its event
    assert ours.extra == {
        CATCH_UP_KEY: {"dag_id": dag_id, "run_id": first.run_id, "events": [late.id]}
    }
    assert "payload" not in ours.extra  # consumers skip it
    assert _queued(dag_id) == 1  # the next run of the DAG is queued; it takes both events

    second = dag.test(run_conf={"finish": False})
    assert task_instance(second, "catch_up").state == "skipped"
    assert len(_events(asset)) == 2  # nothing left behind: no event, no extra run


def _event(id: int, at: datetime.datetime, extra: dict[str, Any], *taken_by: str) -> Any:
    runs = [SimpleNamespace(dag_id=dag_id, run_id="r") for dag_id in taken_by]
    return SimpleNamespace(id=id, timestamp=at, extra=extra, created_dagruns=runs)


def test_leftovers_are_events_after_the_run_was_queued_that_no_run_of_the_dag_took() -> None:
    since = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
    later = since + datetime.timedelta(seconds=1)
    events = [
        _event(1, since, {"payload": {}}),  # at the moment the run was queued: this run's own
        _event(2, later, {"payload": {}}, "consumer"),  # taken by a later run of the DAG
        _event(3, later, {"payload": {}}, "another_dag"),  # taken by another DAG only: left
        _event(4, later, {"payload": {}}),  # taken by none: left
        _event(5, later, {CATCH_UP_KEY: {}}),  # a catch-up event needs no run of its own
        _event(6, later, None),  # an event of another producer: left too
    ]
    assert leftovers(events, dag_id="consumer", since=since) == [3, 4, 6]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"asset": "tfjob-models"},
            "TFJobEventCatchUpOperator.asset: got 'tfjob-models'; must be the airflow.sdk.Asset "
            "the DAG is scheduled on",
        ),
        (
            {"outlets": ["x"]},
            "TFJobEventCatchUpOperator.outlets: got ['x']; is set by the operator to [asset]; "
            "give none",
        ),
    ],
)
def test_a_wrong_argument_is_refused_when_the_dag_is_parsed(
    arguments: dict[str, Any], message: str
) -> None:
    from airflow.sdk import Asset

    kwargs = {"task_id": "catch_up", "asset": Asset("tfjob-models"), **arguments}
    with pytest.raises(TFJobSpecError) as raised:
        TFJobEventCatchUpOperator(**kwargs)
    assert str(raised.value) == message
