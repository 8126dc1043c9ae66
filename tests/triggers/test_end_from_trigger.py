"""A TFJobTrigger that ends its task itself, as the real triggerer runs it: with a task instance
attached (``dag.test()`` attaches none, so there the worker resumes). The triggerer's part is
played here: it takes the first event, and later removes the trigger (cancel, then ``on_kill``)
once Airflow has recorded the task's end. The live tier (tests/live) runs the real triggerer."""

from __future__ import annotations

import asyncio
import logging
import types
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent

from airflow_tfjob import features
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.rules.outcome import Ending
from airflow_tfjob.triggers import tfjob as trigger_mod
from airflow_tfjob.triggers.tfjob import TFJobTrigger
from tests.kubelet.fates import Fate, Script
from tests.triggers.conftest import set_state
from tests.triggers.test_trigger import _create, _rebuild, _trigger
from tests.waiting import eventually


def _attached(trigger: TFJobTrigger, ti: Any, state: str) -> TFJobTrigger:
    """What the triggerer does for a task's trigger: attach its task instance (a real one, in
    the metadata DB, in the ``state`` Airflow will report when it removes the trigger)."""
    set_state(ti, state)
    trigger.task_instance = ti
    return trigger


def _ending_trigger(
    hook: TFJobHook, obj: dict[str, Any], ending: Ending, ti: Any, state: str = "success"
) -> TFJobTrigger:
    trigger = _rebuild(_trigger(hook, obj, ending=ending.to_dict(), end_from_trigger=True))
    return _attached(trigger, ti, state)


async def _end_then_remove(trigger: TFJobTrigger, *, removed: bool = True) -> Any:
    """The first event; then the trigger is removed as Airflow does once the task's end is
    recorded (cancel + on_kill), or, with ``removed=False``, the triggerer just stops."""
    events = trigger.run()
    event = await anext(events)
    rest = asyncio.create_task(anext(events, None))
    await asyncio.sleep(0.5)
    rest.cancel()
    await asyncio.gather(rest, return_exceptions=True)
    if removed:
        await trigger.on_kill()
    await trigger.cleanup()
    return event


def _jobs(hook: TFJobHook, namespace: str) -> list[str]:
    return [j["metadata"]["name"] for j in hook.list_jobs(namespace)[0]]


def _pulled(ti: Any, key: str) -> Any:
    """An XCom of ``ti`` as a downstream task pulls it (the Task SDK, not the event)."""
    from airflow.sdk.bases.xcom import BaseXCom

    return BaseXCom.get_one(
        key=key, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index
    )


def test_success_ends_the_task_with_its_xcoms_and_deletes_the_job_once_recorded(
    replicas: Script, namespace: str, kubeconfig: Path, airflow_ti: Any
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=1.0, message='{"auc": 0.9}'))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _ending_trigger(hook, _create(hook, "ends-ok", namespace), Ending(), airflow_ti)

    async def run() -> Any:
        events = trigger.run()
        event = await anext(events)
        assert _jobs(hook, namespace) == ["ends-ok"]  # not deleted before Airflow recorded it
        rest = asyncio.create_task(anext(events, None))
        await asyncio.sleep(0.3)
        rest.cancel()
        await asyncio.gather(rest, return_exceptions=True)
        await trigger.on_kill()  # the removal: on_finish_action, not on_kill_action
        return event

    event = asyncio.run(run())
    assert isinstance(event, TaskSuccessEvent) and not event.xcoms  # pushed through the Task SDK
    value = _pulled(airflow_ti, "return_value")  # as a downstream task pulls it: a dict
    assert value["state"] == "Succeeded" and value["output"] == {"auc": 0.9}
    assert value["name"] == "ends-ok"
    eventually(lambda: _jobs(hook, namespace) == [])


def test_a_failure_fails_the_task_with_the_report_in_its_log_and_keeps_the_job(
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    capfd: pytest.CaptureFixture[str],
    airflow_ti: Any,
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0))
    replicas.set_fate("ends-bad", "Worker", 0, Fate(duration=0.3, exit_code=2, message="bad"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _ending_trigger(
        hook, _create(hook, "ends-bad", namespace), Ending(), airflow_ti, "failed"
    )
    event = asyncio.run(_end_then_remove(trigger))
    assert isinstance(event, TaskFailedEvent)
    out = capfd.readouterr().out
    report = out[out.index("[error") :].split("\n20")[0]  # the ERROR record, to the next one
    assert "1 Worker replica(s) failed" in report and "worker-0 (exit code 2)" in report
    assert _jobs(hook, namespace) == ["ends-bad"]  # delete_succeeded_tfjob keeps failed jobs


def test_task_tfjob_ending_pushes_the_function_value_and_each_key(
    replicas: Script, namespace: str, kubeconfig: Path, airflow_ti: Any
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=0.5, message='{"loss": 0.2, "acc": 0.8}'))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    ending = Ending(returns="output", multiple_outputs=True, on_finish_action="keep_tfjob")
    event = asyncio.run(
        _end_then_remove(_ending_trigger(hook, _create(hook, "fn", namespace), ending, airflow_ti))
    )
    assert isinstance(event, TaskSuccessEvent) and not event.xcoms  # pushed through the Task SDK
    assert _pulled(airflow_ti, "return_value") == {"loss": 0.2, "acc": 0.8}
    assert (_pulled(airflow_ti, "loss"), _pulled(airflow_ti, "acc")) == (0.2, 0.8)
    assert _jobs(hook, namespace) == ["fn"]  # keep_tfjob


def test_a_soft_failing_sensor_skips_and_never_deletes(
    replicas: Script, namespace: str, kubeconfig: Path, airflow_ti: Any
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=0.3, exit_code=1, message="oom"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    obj = _create(hook, "watched", namespace)
    ending = Ending(on_finish_action=None, skip_on_failure=True)
    trigger = _attached(
        _rebuild(
            _trigger(
                hook,
                obj,
                ending=ending.to_dict(),
                end_from_trigger=True,
                target_states=["Succeeded", "Failed"],
                delete_at_deadline=False,
                on_kill_action="keep_tfjob",
            )
        ),
        airflow_ti,
        "skipped",
    )
    assert isinstance(asyncio.run(_end_then_remove(trigger)), TaskSkippedEvent)
    assert _jobs(hook, namespace) == ["watched"]


def test_a_triggerer_stopping_before_the_end_is_recorded_loses_nothing(
    replicas: Script, namespace: str, kubeconfig: Path, airflow_ti: Any
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=0.5, message="kept"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _ending_trigger(hook, _create(hook, "twice", namespace), Ending(), airflow_ti)
    first = asyncio.run(_end_then_remove(trigger, removed=False))  # no on_kill: a plain stop
    assert _jobs(hook, namespace) == ["twice"]  # the job, and so the outcome, is still there
    again = asyncio.run(_end_then_remove(_attached(_rebuild(trigger), airflow_ti, "success")))
    assert isinstance(first, TaskSuccessEvent) and isinstance(again, TaskSuccessEvent)
    assert first.xcoms == again.xcoms
    eventually(lambda: _jobs(hook, namespace) == [])


def test_a_trigger_never_removed_applies_on_finish_action_itself(
    replicas: Script,
    namespace: str,
    kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
    airflow_ti: Any,
) -> None:
    monkeypatch.setattr(trigger_mod, "REMOVAL_WAIT_SECONDS", 0.5)
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _ending_trigger(hook, _create(hook, "orphan-end", namespace), Ending(), airflow_ti)

    async def run_to_the_end() -> list[Any]:
        return [event async for event in trigger.run()]

    events = asyncio.run(run_to_the_end())
    assert len(events) == 1 and isinstance(events[0], TaskSuccessEvent)
    eventually(lambda: _jobs(hook, namespace) == [])


def test_without_a_task_instance_the_worker_resumes(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _rebuild(
        _trigger(hook, _create(hook, "inline", namespace), ending={}, end_from_trigger=True)
    )

    async def run() -> list[Any]:
        return [event async for event in trigger.run()]

    (event,) = asyncio.run(run())
    assert type(event).__name__ == "TriggerEvent" and event.payload["kind"] == "finished"
    assert _jobs(hook, namespace) == ["inline"]  # the worker's execute_complete finishes it


def test_a_kill_deletes_the_job_even_when_the_triggerer_cancels_on_kill_again(
    replicas: Script, namespace: str, kubeconfig: Path, airflow_ti: Any
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _ending_trigger(
        hook, _create(hook, "killed-twice", namespace), Ending(), airflow_ti, "failed"
    )

    async def kill() -> list[str]:
        waiting = asyncio.create_task(anext(trigger.run()))
        await asyncio.sleep(1.0)
        waiting.cancel()  # a user marked the task failed: the triggerer cancels ...
        await asyncio.gather(waiting, return_exceptions=True)
        on_kill = asyncio.create_task(trigger.on_kill())  # ... and calls on_kill ...
        await asyncio.sleep(0)
        on_kill.cancel()  # ... and at its next turn cancels the trigger's task again
        await asyncio.gather(on_kill, return_exceptions=True)
        for _ in range(100):  # the loop runs on, as a triggerer's does
            names = await asyncio.to_thread(_jobs, hook, namespace)
            if not names:
                break
            await asyncio.sleep(0.1)
        return names

    assert asyncio.run(kill()) == []


def test_with_listener_plugins_the_worker_resumes_and_says_why() -> None:
    """A task ended by its trigger runs no listener calls, so with listeners (OpenLineage, ...)
    installed the deferring worker asks its trigger not to end the task."""
    import logging

    from airflow.providers.common.compat.sdk import get_listener_manager

    from airflow_tfjob.triggers import _ending

    if not features.trigger_failure_retries():
        pytest.skip("before Airflow 3.3.1 the worker resumes whatever the listeners (next test)")
    manager = get_listener_manager()
    assert not manager.has_listeners
    log = logging.getLogger("test-ending")
    assert _ending.in_triggerer(True, log) is True
    assert _ending.in_triggerer(False, log) is False
    listener = types.ModuleType("a_listener_plugin")  # what plugins register: a module
    manager.add_listener(listener)
    try:
        messages: list[str] = []
        log.info = lambda message, *args: messages.append(message % args)  # type: ignore[method-assign]
        assert _ending.in_triggerer(True, log) is False
        assert messages and "Listener plugins are installed" in messages[0]
    finally:
        manager.pm.unregister(listener)


def test_before_airflow_3_3_1_the_worker_resumes_and_the_log_says_why_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ``TaskFailedEvent`` ignores the task's retries before Airflow 3.3.1: there the trigger
    never ends the task, and the first deferral of the process says so."""
    from airflow_tfjob.triggers import _ending

    features._said.discard("end_from_trigger")
    caplog.set_level("WARNING", logger="test-ending-once")
    log = logging.getLogger("test-ending-once")
    first, second = _ending.in_triggerer(True, log), _ending.in_triggerer(True, log)
    said = [r.getMessage() for r in caplog.records if "before 3.3.1" in r.getMessage()]
    if features.trigger_failure_retries():
        assert (first, second, said) == (True, True, [])
    else:
        assert (first, second) == (False, False)
        assert said == [
            "This Airflow (before 3.3.1) fails a task its trigger fails without its retries: "
            "the worker resumes when a TFJob ends, and the task ends there (end_from_trigger "
            "applies from Airflow 3.3.1)"
        ]
