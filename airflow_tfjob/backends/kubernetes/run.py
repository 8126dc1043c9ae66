"""The Kubernetes backend's one entry point: submit (or reattach), follow, collect, clean up."""

from __future__ import annotations

from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import submit
from airflow_tfjob.backends.kubernetes.pods import PodTracker
from airflow_tfjob.backends.kubernetes.request import RunRequest
from airflow_tfjob.backends.kubernetes.wait import Waiter
from airflow_tfjob.hooks.tfjob import TFJobHook
from airflow_tfjob.spec import outcome, report, status

LOG_DRAIN_SECONDS = 15.0


def run(
    hook: TFJobHook, request: RunRequest, *, submitted: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the job to the end; return the XCom result or raise ``TFJobFailed``/``TFJobTimeout``.
    ``submitted``: the job, when the caller has already submitted (or adopted) it."""
    if submitted is None:
        submitted, _ = submit.submit(hook, request)
        request.on_submitted(submitted)
    obj = submitted
    meta = obj["metadata"]
    tracker = PodTracker(
        hook,
        meta["name"],
        meta["namespace"],
        log=request.log,
        get_logs=request.get_logs,
        output_replica=status.output_replica(status.replica_counts(request.manifest)),
    )
    tracker.start()
    try:
        obj, state = Waiter(hook, request, obj, tracker).run()
    except BaseException:
        tracker.stop()
        raise
    tracker.finish(LOG_DRAIN_SECONDS if request.get_logs else 0.0)
    result = report.result(obj, state, tracker.ledger.output)
    finish(hook, request.log, request.on_finish_action, meta, state.phase)
    if state.phase == "Failed":
        where = f"{meta['namespace']}/{meta['name']}"
        raise errors.TFJobFailed(
            report.failure_message(where, state, tracker.ledger.failures, tracker.tail)
        )
    return result


def finish(hook: TFJobHook, log: Any, action: str, meta: dict[str, Any], phase: str) -> None:
    """Apply ``on_finish_action`` once logs and output are safe."""
    where = f"{meta['namespace']}/{meta['name']}"
    if not outcome.deletes(action, phase):
        log.info("Keeping TFJob %s (%s)", where, action)
        return
    hook.delete(meta["name"], meta["namespace"], uid=meta["uid"])
    log.info("Deleted TFJob %s (%s)", where, action)
