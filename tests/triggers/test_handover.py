"""A trigger removed by Airflow: a hand-over to another triggerer keeps the job, a task that
ended deletes it. Airflow 3.3 cancels a trigger with the same message (then ``on_kill``) for
both, Airflow 3.1 and 3.2 cancel it and call only ``cleanup`` (the CI matrix runs this module on
each); the task instance's state, read through Airflow's execution API from a real metadata DB,
is what tells them apart. The live tier runs two real triggerers (see the report of issue 32)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import features
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.rules.outcome import Ending
from airflow_tfjob.triggers.tfjob import TFJobTrigger
from tests.kubelet.fates import Fate, Script
from tests.triggers.conftest import execution_api, set_state
from tests.triggers.test_trigger import _create, _rebuild, _trigger
from tests.waiting import eventually


def _jobs(hook: TFJobHook, namespace: str) -> list[str]:
    """The jobs of ``namespace`` not being deleted (a foreground deletion lingers a moment)."""
    jobs = hook.list_jobs(namespace)[0]
    return [j["metadata"]["name"] for j in jobs if not j["metadata"].get("deletionTimestamp")]


def _removed(trigger: TFJobTrigger, ti: Any, state: str) -> None:
    """The trigger runs a while, then Airflow removes it with its task instance in ``state``, as
    the installed Airflow's triggerer does: cancel, ``on_kill`` (3.3+), ``cleanup``."""
    set_state(ti, state)
    trigger.task_instance = ti

    async def remove() -> None:
        waiting = asyncio.create_task(anext(trigger.run()))
        await asyncio.sleep(1.0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        if features.trigger_on_kill():
            await trigger.on_kill()
        await trigger.cleanup()

    with execution_api(ti):
        asyncio.run(remove())


@pytest.mark.parametrize("end_from_trigger", [False, True])
def test_a_trigger_handed_to_another_triggerer_keeps_its_job(
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    recorded_ti: Any,
    end_from_trigger: bool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))  # runs until deleted
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    obj = _create(hook, "handed-over", namespace)
    trigger = _rebuild(
        _trigger(hook, obj, ending=Ending().to_dict(), end_from_trigger=end_from_trigger)
    )
    _removed(trigger, recorded_ti, "deferred")
    assert _jobs(hook, namespace) == ["handed-over"]
    assert "its task instance is still deferred" in capfd.readouterr().out


@pytest.mark.parametrize("state", ["failed", "success", "none"])
def test_a_trigger_whose_task_ended_deletes_its_job(
    replicas: Script, namespace: str, kubeconfig: Path, recorded_ti: Any, state: str
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _rebuild(_trigger(hook, _create(hook, f"ended-{state}", namespace)))
    _removed(trigger, recorded_ti, state if state != "none" else None)  # type: ignore[arg-type]
    eventually(lambda: _jobs(hook, namespace) == [])  # foreground: gone once its pods are
