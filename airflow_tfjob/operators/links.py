"""Extra links of ``TFJobOperator``: the job in a dashboard, and on the TFJobs page.

Airflow 3 shows an extra link from an XCom the task runner writes when the task ends; the
operator also writes these as soon as the job exists, so the links work while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.configuration import conf
from airflow.sdk import BaseOperatorLink

from airflow_tfjob.operators import _settings

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

    from airflow_tfjob.rules.jobref import JobRef

MONITOR_PATH = "/tfjob/"
"""The TFJobs page, below the UI's path prefix (``[api] base_url``: ``/airflow/tfjob/``)."""


def dashboard_template() -> str:
    """``[tfjob] tfjob_url_template``; empty: no "TFJob" link."""
    return conf.get("tfjob", "tfjob_url_template", fallback="") or ""


def urls(job: JobRef, conn_id: str | None) -> dict[str, str]:
    """Link name -> URL for a job."""
    out: dict[str, str] = {}
    template = dashboard_template()
    if template:
        out[TFJobLink.name] = template.format(**job.to_dict())
    if conn_id:
        query = urlencode({"conn_id": conn_id, "namespace": job.namespace, "name": job.name})
        out[TFJobMonitorLink.name] = f"{_settings.ui_base()}{MONITOR_PATH}?{query}"
    return out


class _JobLink(BaseOperatorLink):
    """A link to the job the task submitted; empty before there is one.

    Airflow calls ``get_link`` on the worker when the task ends, with the operator that ran
    (which keeps the URLs it pushed as ``tfjob_links``); the UI then reads the XCom."""

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return str((getattr(operator, "tfjob_links", None) or {}).get(self.name, ""))


class TFJobLink(_JobLink):
    """The job in a Kubernetes or Kubeflow dashboard (``[tfjob] tfjob_url_template``)."""

    name = "TFJob"


class TFJobMonitorLink(_JobLink):
    """The job on the TFJobs page of this Airflow."""

    name = "TFJob monitor"
