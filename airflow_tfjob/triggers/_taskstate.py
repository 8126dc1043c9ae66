"""Whether a trigger's task instance still waits, asked of Airflow when the trigger is removed.

Airflow 3.3 removes a trigger the same way (cancel, then ``on_kill``) when a user ended its task
and when the trigger was handed to another triggerer (its triggerer missed
``[triggerer] triggerer_health_check_threshold``, or is overloaded): only the task instance's
state tells them apart. ``deferred`` means it still waits, on this trigger in another triggerer:
the job must live. Any other state means the task ended (marked failed or success, cleared,
timed out, or ended by its trigger).
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_tfjob.triggers import _sdk

DEFERRED = "deferred"
READ_SECONDS = 30.0
"""How long Airflow may take to say (a triggerer shutting down may never answer)."""


def _read_state(ti: Any) -> str:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = RuntimeTaskInstance.get_task_states(
        dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
    )
    # Airflow suffixes the key with the map index for a mapped task instance.
    key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
    if key not in states.get(ti.run_id, {}):
        return "removed"  # its run or the task instance is gone: nothing waits for the job
    return str(states[ti.run_id][key] or "none")  # none: cleared


async def ended(ti: Any) -> tuple[bool | None, str]:
    """Whether the task instance has ended (any state but ``deferred``), and its state; or
    ``(None, why)`` when Airflow could not say (never taken as "ended": the reaper deletes the
    job of a task that did end). Read in a thread: the Task SDK's call is synchronous (the
    triggerer bridges it to its loop: ``_sdk``)."""
    try:
        state = await asyncio.wait_for(_sdk.call(_read_state, ti), READ_SECONDS)
    except Exception as exc:  # no supervisor, an API error, no answer in time
        return None, f"{type(exc).__name__}: {exc}"
    return state != DEFERRED, state
