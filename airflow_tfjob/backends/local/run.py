"""The local backend's ``Run``: run the replicas, then return or raise like Kubernetes."""

from __future__ import annotations

from airflow_tfjob import errors
from airflow_tfjob.backends.local.request import LocalRequest
from airflow_tfjob.backends.local.supervisor import LocalJob
from airflow_tfjob.rules import report


class LocalRun:
    """A job's replicas as local processes on this worker (``backends.Run``)."""

    def __init__(self, request: LocalRequest) -> None:
        self.job = LocalJob(request)  # TFJobSpecError here if a replica cannot run

    def run(self) -> report.TaskResult:
        """Run the job to the end; the XCom result (the Kubernetes shape), or ``TFJobFailed``."""
        job = self.job
        obj, state = job.run()
        job.log.info("TFJob %s: %s", job.where, state.summary())
        if state.phase == "Failed":
            failure = report.failure_message(
                job.where, state, job.failures, lambda failed: job.tail(failed.replica)
            )
            raise errors.TFJobFailed(failure)
        return report.result(obj, state, job.output)

    def kill(self, why: str) -> None:
        """Stop every replica (nothing of a local job outlives its task)."""
        self.job.kill(why)
