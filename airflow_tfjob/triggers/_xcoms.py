"""The XComs of a task its trigger ends, pushed as a worker pushes them.

Airflow 3.3 stores the ``xcoms`` of a ``TaskSuccessEvent`` with the server's own serializer, which
turns a dict into a JSON *string*: a downstream task then pulls ``'{"loss": 0.1, ...}'`` where the
same task run on a worker gives it ``{"loss": 0.1, ...}`` (seen in the live tier: the example
DAG's ``report`` task failed on ``result["accuracy"]``). Pushed through the Task SDK (``SetXCom``
to the triggerer's supervisor, which the triggerer serves), they are stored exactly as a worker
stores them. ``push`` sends them in a thread (the Task SDK's call is synchronous); ``apush`` and
``get`` use the Task SDK's async calls on the trigger's loop where Airflow has them (3.3+).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_tfjob import features
from airflow_tfjob.triggers import _sdk


def _push(ti: Any, xcoms: Mapping[str, Any]) -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    for key, value in xcoms.items():
        BaseXCom.set(
            key, value, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id,
            map_index=ti.map_index,
        )  # fmt: skip


async def push(ti: Any, xcoms: Mapping[str, Any]) -> bool:
    """Push ``xcoms`` for ``ti`` as a worker would; False when the Task SDK cannot here (then the
    event carries them, as Airflow stores them)."""
    try:
        await _sdk.call(_push, ti, xcoms)
    except Exception:  # no supervisor (not in a triggerer), an API error
        return False
    return True


async def apush(ti: Any, key: str, value: Any) -> bool:
    """Push one XCom for ``ti`` with the Task SDK's async call, on the trigger's loop (Airflow
    3.3+; before, the synchronous call in a thread); False when it cannot (as ``push``, which
    stays synchronous in a thread: the in-process Task SDK of ``dag.test()`` serves only the
    synchronous call)."""
    from airflow.sdk.bases.xcom import BaseXCom

    where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id}
    try:
        if features.async_xcom():
            await BaseXCom.aset(key, value, map_index=ti.map_index, **where)
        else:
            await _sdk.call(BaseXCom.set, key, value, map_index=ti.map_index, **where)
    except Exception:  # no supervisor (not in a triggerer), an API error
        return False
    return True


async def get(ti: Any, key: str) -> Any:
    """The XCom ``key`` of ``ti`` (``aget_one`` on Airflow 3.3+, else ``get_one`` in a thread)."""
    from airflow.sdk.bases.xcom import BaseXCom

    where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id}
    if features.async_xcom():
        return await BaseXCom.aget_one(key=key, map_index=ti.map_index, **where)
    return await _sdk.call(BaseXCom.get_one, key=key, map_index=ti.map_index, **where)
