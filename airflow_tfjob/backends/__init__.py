"""Where a TFJob runs: ``kubernetes`` (the training operator) or ``local`` (local processes).

The operator renders and validates the manifest, then hands a ``RunRequest`` to a backend; each
backend is a package of its own and they never import each other (an import-linter contract).
"""

from __future__ import annotations

BACKENDS = ("kubernetes", "local")


def check(name: object) -> str:
    """The backend name, or a ``TFJobSpecError`` naming what is allowed (at DAG parse time)."""
    from airflow_tfjob.spec.errors import TFJobSpecError

    if not isinstance(name, str) or name not in BACKENDS:
        allowed = f"must be one of {', '.join(map(repr, BACKENDS))}"
        raise TFJobSpecError("backend", name, allowed)
    return str(name)
