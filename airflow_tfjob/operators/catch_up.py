"""``TFJobEventCatchUpOperator``: no TFJob event waits for a run of its DAG on Airflow <= 3.3.

Up to Airflow 3.3 the scheduler queues one run per (asset, DAG) at a time and gives that run the
events up to the moment it was queued (apache/airflow#54659, fixed in 3.4 by #70972). An event
stored while the run is still queued — jobs finishing in the same second, a busy scheduler, a DAG
at ``max_active_runs`` — queues nothing and is taken by no run until another event comes, which
may be days later.

Put this task last in the DAG scheduled on the asset. It reads the asset's events stored after
its own run was queued (``dag_run.run_after``) that no run of this DAG has taken
(``created_dagruns``), and if there are any it stores one event of its own on the asset: that
event queues the next run — or joins the run already queued — which takes them all. Otherwise it
is skipped and stores nothing, so a DAG with no leftovers never runs more often for it. Its own
event carries ``extra["airflow_tfjob_catch_up"]`` and no ``payload``: consumers skip it.

On Airflow 3.4 and later, where every event queues a run of its own, it is skipped.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from airflow.sdk import Asset, BaseOperator

from airflow_tfjob.model.errors import TFJobSpecError

CATCH_UP_KEY = "airflow_tfjob_catch_up"
"""The ``extra`` key of this operator's own events (their value says which run stored them)."""

FIXED_IN = (3, 4)
"""The first Airflow release that queues a run for every asset event."""


class TFJobEventCatchUpOperator(BaseOperator):
    """Queue the next run of this DAG for the asset's events that no run of it has taken.

    :param asset: The asset the DAG is scheduled on (the one its ``TFJobEventTrigger`` feeds).

    Runs whatever the other tasks' outcome (``trigger_rule="all_done"`` unless given). Returns
    (XCom) the ids of the events it found left behind, ``[]`` when skipped.
    """

    ui_color = "#e8f4ea"

    def __init__(self, *, asset: Asset, trigger_rule: str = "all_done", **kwargs: Any) -> None:
        if not isinstance(asset, Asset):
            raise TFJobSpecError(
                "TFJobEventCatchUpOperator.asset",
                asset,
                "must be the airflow.sdk.Asset the DAG is scheduled on",
            )
        for taken in ("inlets", "outlets"):
            if kwargs.get(taken):
                raise TFJobSpecError(
                    f"TFJobEventCatchUpOperator.{taken}",
                    kwargs[taken],
                    "is set by the operator to [asset]; give none",
                )
        super().__init__(inlets=[asset], outlets=[asset], trigger_rule=trigger_rule, **kwargs)
        self.asset = asset

    def execute(self, context: Any) -> list[int]:
        from airflow.providers.common.compat.sdk import AirflowSkipException

        if _airflow_version() >= FIXED_IN:
            raise AirflowSkipException("this Airflow queues a run for every asset event")
        run = context["dag_run"]
        since = run.run_after
        events = context["inlet_events"][self.asset].after(since.isoformat())
        left = leftovers(events, dag_id=run.dag_id, since=since)
        if not left:
            self.log.info(
                "Every event on %s since this run was queued (%s) is taken: nothing to catch up",
                self.asset.name,
                since.isoformat(),
            )
            raise AirflowSkipException("no event left behind")
        context["outlet_events"][self.asset].extra = {
            CATCH_UP_KEY: {"dag_id": run.dag_id, "run_id": run.run_id, "events": left}
        }
        self.log.info(
            "%d event(s) on %s stored after this run was queued (%s) are taken by no run of %s "
            "(ids %s): storing a catch-up event, which queues the run that takes them",
            len(left),
            self.asset.name,
            since.isoformat(),
            run.dag_id,
            left,
        )
        return left


def leftovers(events: Iterable[Any], *, dag_id: str, since: datetime.datetime) -> list[int]:
    """The ids of ``events`` stored after ``since`` that no run of ``dag_id`` took, other than
    catch-up events (which need no run of their own)."""
    return [
        event.id
        for event in events
        if event.timestamp > since
        and CATCH_UP_KEY not in (event.extra or {})
        and not any(run.dag_id == dag_id for run in event.created_dagruns)
    ]


def _airflow_version() -> tuple[int, ...]:
    import airflow
    from packaging.version import Version

    return tuple(Version(airflow.__version__).release[:2])
