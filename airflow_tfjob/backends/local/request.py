"""What the operator hands the local backend: one value, no Airflow objects in it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LocalRequest:
    """One local run of a TFJob manifest."""

    manifest: dict[str, Any]
    """The validated TFJob manifest, name and namespace set."""
    identity: dict[str, str]
    """Labels every try of the task instance shares: leftovers of an earlier try are stopped."""
    log: logging.Logger | Any
    """Where progress and replica output go (the task log)."""
    run_root: Path
    """Directory under which this run's directory is made (``[tfjob] local_run_dir``)."""
    get_logs: bool = True
    """Echo every replica's output into ``log`` (the per-replica files are always written)."""
    deadline: float | None = None
    """Absolute ``time.time()`` after which every replica is stopped and the task fails."""
    startup_timeout: float | None = 600.0
    """Seconds for every replica to come up (listen on its ``TF_CONFIG`` port, or exit)."""
    on_finish_action: str = "delete_succeeded_tfjob"
    """Deleting the "job" removes the replicas' working directories; logs are kept."""
    threads: int | None = None
    """TensorFlow intra-op threads per replica; ``None``: the machine's cores shared out."""
    stop_grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL (a group's ``terminationGracePeriodSeconds`` wins)."""
    on_submitted: Callable[[dict[str, Any]], None] = field(default=lambda obj: None)
    """Called once the run exists, with a TFJob-shaped object (name, namespace, uid)."""
