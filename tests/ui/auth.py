"""An auth manager for the UI tests: Airflow's SimpleAuthManager, except that users other than
admins may read only the DAGs whose id starts with ``public_`` (SimpleAuthManager has no per-DAG
rules of its own). It runs in each Airflow version's api-server the tests start (3.1 too)."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class PrefixAuthManager(SimpleAuthManager):  # type: ignore[misc]
    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        allowed = super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
        if not allowed or _is_admin(user) or details is None or details.id is None:
            return bool(allowed)
        return str(details.id).startswith("public_")


def _is_admin(user: Any) -> bool:
    """Whether the user has the Admin role (``SimpleAuthManager._is_admin`` from 3.2 on)."""
    return str(getattr(user, "role", None) or "").upper() == "ADMIN"
