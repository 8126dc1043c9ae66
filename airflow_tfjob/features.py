"""What the running Airflow can do, for the features that differ between the minors this
provider supports (3.1, 3.2, 3.3; docs/compatibility.md has the table).

Each is detected at run time where it appears: the attribute Airflow added, or, for a change of
behaviour with nothing to look at, the release that made it. What a missing feature costs the
user is said once per process (``say_once``), not once per task.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_said: set[str] = set()
_lock = threading.Lock()


@cache
def trigger_on_kill() -> bool:
    """3.3.0: Airflow calls a trigger's ``on_kill`` when a user ends its deferred task. Before,
    only ``cleanup`` runs, for a kill, a hand-over and a triggerer restart alike."""
    from airflow.triggers.base import BaseTrigger

    return hasattr(BaseTrigger, "on_kill")


@cache
def trigger_failure_retries() -> bool:
    """3.3.1: a task a trigger fails (``TaskFailedEvent``) is retried when it has retries left.
    Before, it failed for good: a behaviour of the scheduler's side, with no attribute to see, so
    the release is what tells."""
    from airflow import __version__
    from packaging.version import Version

    return Version(__version__).release >= (3, 3, 1)


@cache
def async_xcom() -> bool:
    """3.3: ``BaseXCom.aget_one``/``aset`` on the trigger's loop (before: the synchronous calls,
    run in a thread)."""
    from airflow.sdk.bases.xcom import BaseXCom

    return hasattr(BaseXCom, "aget_one") and hasattr(BaseXCom, "aset")


@cache
def get_dag() -> bool:
    """3.2: ``RuntimeTaskInstance.get_dag``: a task asks whether Airflow knows a DAG."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    return hasattr(RuntimeTaskInstance, "get_dag")


def say_once(log: Any, feature: str, message: str, *args: Any) -> None:
    """Log ``message`` (a warning) the first time ``feature`` is found missing in this process."""
    with _lock:
        if feature in _said:
            return
        _said.add(feature)
    log.warning(message, *args)
