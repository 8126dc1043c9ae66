"""What the operator hands the Kubernetes backend: one value, no Airflow objects in it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

OnFinish = Literal["delete_tfjob", "delete_succeeded_tfjob", "keep_tfjob"]
ON_FINISH_ACTIONS: tuple[OnFinish, ...] = ("delete_tfjob", "delete_succeeded_tfjob", "keep_tfjob")
OnKill = Literal["delete_tfjob", "keep_tfjob"]
ON_KILL_ACTIONS: tuple[OnKill, ...] = ("delete_tfjob", "keep_tfjob")


@dataclass
class RunRequest:
    """One submission: the manifest and how to follow it."""

    manifest: dict[str, Any]
    """The validated TFJob manifest, name and namespace set."""
    identity: dict[str, str]
    """Labels every try of the task instance shares, to recognise our own job."""
    log: logging.Logger | Any
    """Where progress and replica logs go (the task log)."""
    get_logs: bool = True
    """Stream every replica's log into ``log``."""
    poll_interval: float = 10.0
    """Longest quiet period between progress checks (a watch returns earlier on change)."""
    deadline: float | None = None
    """Absolute ``time.time()`` after which the job is deleted and the task fails."""
    startup_timeout: float | None = None
    """Seconds for the first replica to start running before the task fails."""
    on_finish_action: OnFinish = "delete_succeeded_tfjob"
    """What to do with the TFJob once it finished and its logs and output are collected."""
    stored: dict[str, Any] | None = None
    """{name, namespace, uid} of an earlier try, from Airflow's task state store."""
    on_submitted: Callable[[dict[str, Any]], None] = field(default=lambda obj: None)
    """Called once the TFJob exists (created or adopted): push XComs, persist identity."""
