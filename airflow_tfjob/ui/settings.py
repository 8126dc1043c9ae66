"""The page's settings from Airflow's ``[tfjob]`` section."""

from __future__ import annotations

from urllib.parse import urlparse

from airflow.configuration import conf

SECTION = "tfjob"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def targets() -> list[tuple[str, str | None]]:
    """(connection, namespace) pairs to list; ``None``: the connection's own namespace."""
    connections = _split(conf.get(SECTION, "ui_connections", fallback="kubernetes_default"))
    namespaces: list[str | None] = [*_split(conf.get(SECTION, "ui_namespaces", fallback=""))]
    return [(c, n) for c in connections for n in namespaces or [None]]


def ui_base() -> str:
    """The path prefix of the Airflow UI (from ``[api] base_url``), without a trailing slash."""
    base = conf.get("api", "base_url", fallback="") or ""
    return urlparse(base).path.rstrip("/")
