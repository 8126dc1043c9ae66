"""The page's settings from Airflow's configuration."""

from __future__ import annotations

from urllib.parse import urlparse

from airflow.configuration import conf

from airflow_tfjob.operators._settings import deployment, targets

__all__ = ["deployment", "targets", "ui_base"]


def ui_base() -> str:
    """The path prefix of the Airflow UI (from ``[api] base_url``), without a trailing slash."""
    base = conf.get("api", "base_url", fallback="") or ""
    return urlparse(base).path.rstrip("/")
