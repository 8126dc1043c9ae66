"""Where a TFJob runs: ``kubernetes`` (the training operator) or ``local`` (local processes).

The operator renders and validates the manifest, then makes a backend's ``Run`` of it
(``KubernetesRun``, ``LocalRun``) and calls it the same way for both; each backend is a package
of its own and they never import each other (an import-linter contract).
"""

from __future__ import annotations

from typing import Any, Protocol

BACKENDS = ("kubernetes", "local")


class Run(Protocol):
    """One task instance's job on a backend, as the operator drives it."""

    def run(self) -> dict[str, Any]:
        """Submit (or adopt) the job, follow it to its end, collect its outcome and clean up:
        the XCom result, or ``TFJobFailed``/``TFJobTimeout``/``TFJobError``."""
        ...

    def kill(self, why: str) -> None:
        """The task is being killed (or ran out of time): stop the job, per ``on_kill_action``."""
        ...


def check(name: object) -> str:
    """The backend name, or a ``TFJobSpecError`` naming what is allowed (at DAG parse time)."""
    from airflow_tfjob.spec.errors import TFJobSpecError

    if not isinstance(name, str) or name not in BACKENDS:
        allowed = f"must be one of {', '.join(map(repr, BACKENDS))}"
        raise TFJobSpecError("backend", name, allowed)
    return str(name)
