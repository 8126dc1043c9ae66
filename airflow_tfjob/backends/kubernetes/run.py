"""The Kubernetes backend's one entry point: submit (or reattach), follow, collect, clean up."""

from __future__ import annotations

from typing import Any

from airflow_tfjob.backends.kubernetes import report, submit
from airflow_tfjob.backends.kubernetes.pods import PodTracker
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.backends.kubernetes.wait import Waiter
from airflow_tfjob.hooks import errors
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec import status
from airflow_tfjob.spec.status import JobState

LOG_DRAIN_SECONDS = 15.0


def output_replica_of(manifest: dict[str, Any]) -> str:
    """chief-0 when the job has a chief, else worker-0."""
    specs = manifest["spec"]["tfReplicaSpecs"]
    return status.output_replica({k: int(v.get("replicas", 1)) for k, v in specs.items()})


def run(hook: TFJobHook, request: RunRequest) -> dict[str, Any]:
    """Run the job to the end; return the XCom result or raise ``TFJobFailed``/``TFJobTimeout``."""
    obj, _ = submit.submit(hook, request)
    request.on_submitted(obj)
    meta = obj["metadata"]
    tracker = PodTracker(
        hook,
        meta["name"],
        meta["namespace"],
        log=request.log,
        get_logs=request.get_logs,
        output_replica=output_replica_of(request.manifest),
    )
    tracker.start()
    try:
        obj, state = Waiter(hook, request, obj, tracker).run()
    except BaseException:
        tracker.stop()
        raise
    tracker.finish(LOG_DRAIN_SECONDS if request.get_logs else 0.0)
    outcome = report.result(obj, state, tracker.output)
    finish(hook, request, obj, state)
    if state.phase == "Failed":
        where = f"{meta['namespace']}/{meta['name']}"
        raise errors.TFJobFailed(
            report.failure_message(where, state, tracker.failures, tracker.tail)
        )
    return outcome


def finish(hook: TFJobHook, request: RunRequest, obj: dict[str, Any], state: JobState) -> None:
    """Apply ``on_finish_action`` once logs and output are safe."""
    action = request.on_finish_action
    if action == "keep_tfjob" or (
        action == "delete_succeeded_tfjob" and state.phase != "Succeeded"
    ):
        request.log.info(
            "Keeping TFJob %s/%s (%s)",
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            action,
        )
        return
    meta = obj["metadata"]
    hook.delete(meta["name"], meta["namespace"], uid=meta["uid"])
    request.log.info("Deleted TFJob %s/%s (%s)", meta["namespace"], meta["name"], action)
