"""The local backend's one entry point: run the replicas, then return or raise like Kubernetes."""

from __future__ import annotations

from typing import Any

from airflow_tfjob import errors
from airflow_tfjob.backends.local.supervisor import LocalJob
from airflow_tfjob.spec import report


def run(job: LocalJob) -> dict[str, Any]:
    """Run ``job`` to the end; the XCom result (the Kubernetes shape), or ``TFJobFailed``."""
    obj, state = job.run()
    job.log.info("TFJob %s: %s", job.where, state.summary())
    if state.phase == "Failed":
        raise errors.TFJobFailed(report.failure_message(job.where, state, job.failures, job.tail))
    return report.result(obj, state, job.output)
