"""The ``[tfjob]`` settings that say which jobs are this deployment's and where they live.

Read by the operators (the deployment label they put on every job), the reaper (what it covers)
and the TFJobs page (what it lists).
"""

from __future__ import annotations

from urllib.parse import urlparse

from airflow.configuration import conf

SECTION = "tfjob"
DEFAULT_BASE_URL = "http://localhost:8080"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def deployment() -> str:
    """``[tfjob] deployment``; empty: the host (and port) of ``[api] base_url``, the address
    users reach this Airflow at, e.g. ``airflow.example.com`` or ``localhost-8080``."""
    configured = conf.get(SECTION, "deployment", fallback="").strip()
    if configured:
        return configured
    url = urlparse(conf.get("api", "base_url", fallback="") or DEFAULT_BASE_URL)
    host = url.hostname or "localhost"
    return f"{host}-{url.port}" if url.port else host


def ui_base() -> str:
    """The path prefix of the Airflow UI (from ``[api] base_url``), without a trailing slash:
    ``/airflow`` for ``https://example.com/airflow/``, empty at the root."""
    base = conf.get("api", "base_url", fallback="") or ""
    return urlparse(base).path.rstrip("/")


def targets() -> list[tuple[str, str | None]]:
    """(connection, namespace) pairs the TFJobs page lists and the reaper covers; a ``None``
    namespace: the connection's own."""
    connections = _split(conf.get(SECTION, "ui_connections", fallback="kubernetes_default"))
    namespaces: list[str | None] = [*_split(conf.get(SECTION, "ui_namespaces", fallback=""))]
    return [(c, n) for c in connections for n in namespaces or [None]]


def reaper_grace() -> float:
    """``[tfjob] reaper_grace_seconds``: how long a job must stay an orphan before the reaper
    deletes it."""
    return conf.getfloat(SECTION, "reaper_grace_seconds", fallback=30.0)
