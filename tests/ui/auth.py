"""An auth manager for the UI tests: Airflow's SimpleAuthManager, except that users other than
admins may read only the DAGs whose id starts with ``public_`` (SimpleAuthManager has no per-DAG
rules of its own)."""

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
        if not allowed or self._is_admin(user) or details is None or details.id is None:
            return bool(allowed)
        return str(details.id).startswith("public_")
