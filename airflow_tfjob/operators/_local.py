"""The local backend's settings, read from Airflow's ``[tfjob]`` section when a task runs."""

from __future__ import annotations

from pathlib import Path

from airflow.configuration import conf, get_airflow_home

SECTION = "tfjob"


def default_backend() -> str:
    """``[tfjob] backend``, ``kubernetes`` when unset."""
    return conf.get(SECTION, "backend", fallback="kubernetes") or "kubernetes"


def run_root() -> Path:
    """``[tfjob] local_run_dir``, else ``$AIRFLOW_HOME/tfjob-local``."""
    configured = conf.get(SECTION, "local_run_dir", fallback="")
    if configured:
        return Path(configured).expanduser()
    return Path(get_airflow_home()) / "tfjob-local"


def threads() -> int | None:
    """``[tfjob] local_threads``; ``None`` (share the cores out) when unset."""
    value = conf.get(SECTION, "local_threads", fallback="")
    if not value:
        return None
    count = int(value)
    if count < 1:
        raise ValueError(f"[tfjob] local_threads: got {value!r}; must be a positive integer")
    return count


def stop_grace() -> float:
    """``[tfjob] local_stop_grace_seconds`` (default 5)."""
    return conf.getfloat(SECTION, "local_stop_grace_seconds", fallback=5.0)
