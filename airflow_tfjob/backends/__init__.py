"""Where a job runs: ``kubernetes`` (a TFJob, or a Trainer v2 TrainJob) or ``local`` (processes).

The operator renders and validates the manifest, then makes a backend's ``Run`` of it
(``KubernetesRun``, ``LocalRun``) and calls it the same way for both; each backend is a package
of its own and they never import each other (an import-linter contract).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules.report import TaskResult

BACKENDS = ("kubernetes", "local")


@dataclass(kw_only=True)
class Request:
    """What the operator hands a backend, whichever: one value, no Airflow objects in it."""

    manifest: KubeObject
    """The validated TFJob manifest, name and namespace set (on Trainer v2 the hook submits it
    as a TrainJob)."""
    identity: dict[str, str]
    """Labels every try of the task instance shares, to recognise (or stop) an earlier try's job."""
    log: logging.Logger | Any
    """Where progress and replica logs go (the task log)."""
    get_logs: bool = True
    """Stream every replica's log into ``log``."""
    deadline: float | None = None
    """Absolute ``time.time()`` after which the job is stopped and the task fails."""
    startup_timeout: float | None = 600.0
    """Seconds for the replicas to come up before the task fails (each backend says how)."""
    on_finish_action: str = "delete_succeeded_tfjob"
    """What to do with the job once it finished and its logs and output are collected."""
    on_submitted: Callable[[KubeObject], None] = field(default=lambda obj: None)
    """Called once the job exists (created or adopted): push XComs, persist identity."""


class Run(Protocol):
    """One task instance's job on a backend, as the operator drives it."""

    def run(self) -> TaskResult:
        """Submit (or adopt) the job, follow it to its end, collect its outcome and clean up:
        the XCom result, or ``TFJobFailed``/``TFJobTimeout``/``TFJobError``."""
        ...

    def kill(self, why: str) -> None:
        """The task is being killed (or ran out of time): stop the job, per ``on_kill_action``."""
        ...


def check(name: object) -> str:
    """The backend name, or a ``TFJobSpecError`` naming what is allowed (at DAG parse time)."""
    from airflow_tfjob.model.errors import TFJobSpecError

    if not isinstance(name, str) or name not in BACKENDS:
        allowed = f"must be one of {', '.join(map(repr, BACKENDS))}"
        raise TFJobSpecError("backend", name, allowed)
    return str(name)
