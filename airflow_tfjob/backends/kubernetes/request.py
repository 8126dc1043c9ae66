"""What the operator hands the Kubernetes backend (``backends.Request`` and how to follow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from airflow_tfjob.backends import Request

OnFinish = Literal["delete_tfjob", "delete_succeeded_tfjob", "keep_tfjob"]
ON_FINISH_ACTIONS: tuple[OnFinish, ...] = ("delete_tfjob", "delete_succeeded_tfjob", "keep_tfjob")
OnKill = Literal["delete_tfjob", "keep_tfjob"]
ON_KILL_ACTIONS: tuple[OnKill, ...] = ("delete_tfjob", "keep_tfjob")


@dataclass(kw_only=True)
class RunRequest(Request):
    """One submission: the manifest and how to follow it. The start-up timeout counts until a
    replica's container runs."""

    poll_interval: float = 10.0
    """Longest quiet period between progress checks (a watch returns earlier on change)."""
    stored: dict[str, Any] | None = None
    """{name, namespace, uid} of an earlier try, from Airflow's task state store."""
