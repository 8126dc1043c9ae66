"""What the operator hands the local backend (``backends.Request`` and where to run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from airflow_tfjob.backends import Request


@dataclass(kw_only=True)
class LocalRequest(Request):
    """One local run of a TFJob manifest. The start-up timeout counts until every replica
    listens on its ``TF_CONFIG`` port (or exits); deleting the "job" removes the replicas'
    working directories (their logs are kept)."""

    run_root: Path
    """Directory under which this run's directory is made (``[tfjob] local_run_dir``)."""
    threads: int | None = None
    """TensorFlow intra-op threads per replica; ``None``: the machine's cores shared out."""
    stop_grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL (a group's ``terminationGracePeriodSeconds`` wins)."""
