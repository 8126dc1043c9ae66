"""The Airflow plugin: the TFJobs app at ``/tfjob``, its entry in the UI's Browse menu, and a
"TFJob" tab on every task instance.

Registered through the ``airflow.plugins`` entry point, so installing the provider is enough.

The views' hrefs are relative (``tfjob/``, not ``/tfjob/``): the UI resolves them against its
``<base href>``, the path of ``[api] base_url``, under which the api-server mounts the app, so
they work when Airflow is served under a sub-path (``https://example.com/airflow``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_tfjob.ui.app import app

URL_PREFIX = "/tfjob"
PAGE_HREF = "tfjob/"
TASK_HREF = "tfjob/task?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"
"""The task-instance tab. Airflow's UI fills in the placeholders (URL-encoded from 3.2, as they
are on 3.1: ``task.html`` decodes them so that a ``+`` of a run id stays one) and leaves
``{MAP_INDEX}`` as it is for an unmapped task instance (the app reads it as -1)."""


class TFJobPlugin(AirflowPlugin):
    """Adds the "TFJobs" page and the task instances' "TFJob" tab (iframes of the app, inside
    the Airflow UI)."""

    name = "airflow_tfjob"
    fastapi_apps = [  # noqa: RUF012 -- the base class declares these as plain lists
        {"app": app, "url_prefix": URL_PREFIX, "name": "TFJobs"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "TFJobs",
            "href": PAGE_HREF,
            "url_route": "tfjobs",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "TFJob",
            "href": TASK_HREF,
            "url_route": "tfjob",
            "destination": "task_instance",
        },
    ]
