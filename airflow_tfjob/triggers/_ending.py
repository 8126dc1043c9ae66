"""Whether a deferred task may end in the triggerer, decided on the worker when it defers."""

from __future__ import annotations

from typing import Any

from airflow_tfjob import features


def in_triggerer(wanted: bool, log: Any) -> bool:
    """``end_from_trigger`` unless listener plugins (OpenLineage, ...) are installed: a task
    ended by its trigger never runs the worker's listener calls, so Airflow refuses any DAG whose
    task *declares* ``end_from_trigger`` when listeners exist. Ours decide here, per run: with
    listeners, the worker resumes and they see the task end. Nor before Airflow 3.3.1, whose
    ``TaskFailedEvent`` ignores the task's retries (``features.trigger_failure_retries``)."""
    if not wanted:
        return False
    from airflow.providers.common.compat.sdk import get_listener_manager

    if not features.trigger_failure_retries():
        features.say_once(
            log,
            "end_from_trigger",
            "This Airflow (before 3.3.1) fails a task its trigger fails without its retries: "
            "the worker resumes when a TFJob ends, and the task ends there (end_from_trigger "
            "applies from Airflow 3.3.1)",
        )
        return False

    if get_listener_manager().has_listeners:
        log.info(
            "Listener plugins are installed: the worker resumes when the job ends, so they see "
            "the task end (end_from_trigger applies only without listeners)"
        )
        return False
    return True
