"""TFJobTrigger on its own, in one event loop, against the real API server and the replicas."""

from __future__ import annotations

import asyncio
import importlib
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_tfjob import Chief, TfJob, Worker
from airflow_tfjob.backends.kubernetes import watches
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.model import naming
from airflow_tfjob.triggers.tfjob import TFJobTrigger
from tests.faults.proxy import FaultProxy
from tests.kubelet.fates import Fate, Script
from tests.waiting import eventually


def _create(
    hook: TFJobHook, name: str, namespace: str, *, ours: bool = True, **groups: Any
) -> dict[str, Any]:
    """A TFJob labelled as the operator labels what it creates (``ours``), or one without."""
    job = TfJob(**groups) if groups else TfJob(chief=Chief(), worker=Worker())
    manifest = job.to_manifest(name, namespace, image="tf:2")
    if ours:
        manifest["metadata"].setdefault("labels", {}).update(naming.MANAGED_BY)
    return hook.create(manifest)


def _trigger(hook: TFJobHook, obj: dict[str, Any], **kwargs: Any) -> TFJobTrigger:
    meta = obj["metadata"]
    return TFJobTrigger(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        settings=hook.trigger_settings(),
        poll_interval=1,
        **kwargs,
    )


async def _first_event(trigger: TFJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def _rebuild(trigger: TFJobTrigger) -> TFJobTrigger:
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**kwargs)  # type: ignore[no-any-return]


def test_serialize_rebuild_and_run_reports_success_with_output(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=1.0, message='{"acc": 1}'))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _rebuild(_trigger(hook, _create(hook, "serialized", namespace)))
    assert trigger.settings["config_dict"]["clusters"]  # resolved on the "worker": no file needed
    event = asyncio.run(_first_event(trigger))
    assert event["kind"] == "finished"
    assert event["result"]["state"] == "Succeeded" and event["result"]["output"] == {"acc": 1}
    assert watches.active() == {}  # the shared watches closed with the last subscriber


def test_a_triggerer_restart_mid_wait_resumes_and_never_duplicates(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=4.0, message="ok"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    obj = _create(hook, "restarted", namespace)
    trigger = _trigger(hook, obj)

    async def restart() -> dict[str, Any]:
        task = asyncio.create_task(_first_event(trigger))
        await asyncio.sleep(1.5)
        task.cancel()  # the triggerer stops ...
        await asyncio.gather(task, return_exceptions=True)
        await trigger.cleanup()  # ... and cleans up, which must not touch the job
        assert watches.active() == {}
        return await _first_event(_rebuild(trigger))  # ... and another triggerer resumes

    event = asyncio.run(restart())
    assert event["kind"] == "finished" and event["result"]["output"] == "ok"
    jobs, _ = hook.list_jobs(namespace)
    assert [j["metadata"]["uid"] for j in jobs] == [obj["metadata"]["uid"]]


def test_fifty_triggers_share_one_watch_per_namespace(
    replicas: Script,
    namespace: str,
    fault_proxy: FaultProxy,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replicas.set_default_fate("Worker", Fate(duration=3.0, message="done"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    triggers = [
        _trigger(hook, _create(hook, f"many-{i}", namespace, worker=Worker())) for i in range(50)
    ]

    async def all_of_them() -> list[dict[str, Any]]:
        tasks = [asyncio.create_task(_first_event(t)) for t in triggers]
        await asyncio.sleep(1.0)
        assert len(watches.active()) == 2  # one TFJob watch and one pod watch
        return await asyncio.gather(*tasks)

    events = asyncio.run(all_of_them())
    assert [e["kind"] for e in events] == ["finished"] * 50
    assert {e["result"]["output"] for e in events} == {"done"}
    assert fault_proxy.requests(r"/tfjobs$", watch=True) == 1
    assert fault_proxy.requests(r"/pods$", watch=True) == 1
    # every job's state, output and pods came from the two shared watches: no per-job reads
    assert fault_proxy.requests(r"/tfjobs/many-", method="GET") == 0
    # the pod watch's own list, plus one per job whose pods trailed its status by more than
    # SETTLE_SECONDS (it happens on a loaded machine; each is logged)
    listed = capfd.readouterr().out.count("did not show on the pod watch")
    assert fault_proxy.requests(r"/pods$", watch=False) == 1 + listed
    assert listed <= 5  # a fallback, not a read per job
    # the two watches; a fallback list, chunked by the server, streams beside them
    assert fault_proxy.peak_streams <= 2 + listed
    assert watches.active() == {}  # closed with the last subscriber


def test_a_trigger_reads_the_job_itself_while_the_watch_cannot_serve_it(
    replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=3.0, message="read"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    obj = _create(hook, "unwatched", namespace)
    # the TFJob watch's list is refused for a while (403: no retry, the watch backs off): the
    # trigger must not wait on a store never filled, but read its job itself meanwhile
    broken = fault_proxy.fail(r"/tfjobs$", status=403, times=None, watch=False)
    trigger = _trigger(hook, obj)

    async def run() -> dict[str, Any]:
        task = asyncio.create_task(_first_event(trigger))
        await asyncio.sleep(2.5)
        fault_proxy.clear()
        return await task

    event = asyncio.run(run())
    assert event["kind"] == "finished" and event["result"]["output"] == "read"
    assert broken.hits >= 1
    assert fault_proxy.requests(r"/tfjobs/unwatched$", method="GET") >= 1


def test_a_410_and_cut_streams_mid_wait_are_survived(
    replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=4.0, message="survived"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    trigger = _trigger(hook, _create(hook, "faulty", namespace))
    cut = fault_proxy.cut_watch(r"/tfjobs$", after_seconds=0.5, times=3)
    gone = fault_proxy.gone(r"/tfjobs$", times=1)
    event = asyncio.run(_first_event(trigger))
    assert event["kind"] == "finished" and event["result"]["output"] == "survived"
    assert cut.hits >= 1 and gone.hits == 1


def test_the_deadline_deletes_the_job_and_says_so(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _trigger(hook, _create(hook, "overdue", namespace), deadline=time.time() + 2)
    event = asyncio.run(_first_event(trigger))
    assert event["kind"] == "deadline"
    assert "did not finish before the task's execution_timeout" in event["message"]
    eventually(lambda: hook.list_jobs(namespace)[0] == [])


def test_on_kill_deletes_the_job(replicas: Script, namespace: str, kubeconfig: Path) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    trigger = _trigger(hook, _create(hook, "killed", namespace))

    async def kill() -> None:
        task = asyncio.create_task(_first_event(trigger))
        await asyncio.sleep(1.0)
        await trigger.on_kill()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(kill())
    eventually(lambda: hook.list_jobs(namespace)[0] == [])


def test_a_job_already_running_is_not_held_to_the_startup_timeout_after_a_restart(
    replicas: Script, namespace: str, kubeconfig: Path
) -> None:
    replicas.set_default_fate("Chief", Fate(duration=6.0, message="done"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(kubeconfig))
    obj = _create(hook, "adopted-late", namespace)
    eventually(lambda: "Running" in str(hook.get("adopted-late", namespace).get("status")))
    time.sleep(2.0)  # the start-up timeout below has passed since the job's creation
    event = asyncio.run(_first_event(_rebuild(_trigger(hook, obj, startup_timeout_seconds=1))))
    assert event["kind"] == "finished" and event["result"]["output"] == "done"
    assert hook.get("adopted-late", namespace)["metadata"]["uid"] == obj["metadata"]["uid"]


def test_a_job_airflow_did_not_create_is_followed_by_a_watch_of_its_own(
    replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    # a sensor may wait for a job without our label: the namespace's TFJob watch selects only
    # ours, so that job is handed to a watch of its own (a field selector on its name)
    replicas.set_default_fate("Chief", Fate(duration=2.0, message="theirs"))
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    ours = _trigger(hook, _create(hook, "labelled", namespace))
    theirs = _trigger(hook, _create(hook, "unlabelled", namespace, ours=False))

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(_first_event(ours), _first_event(theirs))

    events = asyncio.run(both())
    assert [e["kind"] for e in events] == ["finished", "finished"]
    assert [e["result"]["output"] for e in events] == ["theirs", "theirs"]
    queries = [q for _, p, q in fault_proxy.history if p.endswith("/tfjobs") and "watch" in q]
    assert any("labelSelector" in q and "managed-by" in q for q in queries)
    assert any("fieldSelector" in q and "unlabelled" in q for q in queries)
    assert watches.active() == {}


def test_a_deadline_whose_deletion_fails_says_the_job_still_runs_and_why(
    replicas: Script, namespace: str, fault_proxy: FaultProxy
) -> None:
    replicas.set_default_fate("Chief", Fate(exit_code=None))  # runs until deleted
    hook = TFJobHook(kubernetes_conn_id=None, config_file=str(fault_proxy.kubeconfig))
    obj = _create(hook, "undeletable", namespace)
    refused = fault_proxy.fail(r"/tfjobs/undeletable$", method="DELETE", status=403, times=None)
    trigger = _trigger(hook, obj, deadline=time.time() + 3)
    event = asyncio.run(_first_event(trigger))
    assert refused.hits >= 1
    message = event["message"]
    assert event["kind"] == "deadline" and "lost track" not in message
    assert "could not be deleted (" in message and "is still running" in message
    assert "Forbidden" in message or "403" in message  # the server's reason
    assert "was deleted" not in message
    fault_proxy.clear()
    # still there, not being deleted, and found by the reaper's selection (its labels kept)
    (job,) = hook.list_jobs(namespace, label_selector=naming.selector())[0]
    assert job["metadata"]["uid"] == obj["metadata"]["uid"]
    assert not job["metadata"].get("deletionTimestamp")
