"""Where a TFJob runs: ``kubernetes`` (the training operator) or ``local`` (local processes).

The operator renders and validates the manifest, then hands a ``RunRequest`` to a backend; each
backend is a package of its own and they never import each other (an import-linter contract).
"""

from __future__ import annotations

BACKENDS = ("kubernetes", "local")


def check(name: object) -> str:
    """The backend name, or a ValueError naming what is allowed (at DAG parse time)."""
    if name not in BACKENDS:
        raise ValueError(f"backend: got {name!r}; must be one of {', '.join(map(repr, BACKENDS))}")
    return str(name)
