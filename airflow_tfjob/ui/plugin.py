"""The Airflow plugin: the TFJobs app at ``/tfjob`` and its entry in the UI's Browse menu.

Registered through the ``airflow.plugins`` entry point, so installing the provider is enough.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_tfjob.ui.app import app

URL_PREFIX = "/tfjob"


class TFJobPlugin(AirflowPlugin):
    """Adds the "TFJobs" page (an iframe of the app, inside the Airflow UI)."""

    name = "airflow_tfjob"
    fastapi_apps = [  # noqa: RUF012 -- the base class declares these as plain lists
        {"app": app, "url_prefix": URL_PREFIX, "name": "TFJobs"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "TFJobs",
            "href": f"{URL_PREFIX}/",
            "url_route": "tfjobs",
            "destination": "nav",
            "category": "browse",
        }
    ]
