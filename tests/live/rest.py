"""A small client of the live api-server's public REST API (``/api/v2``), as one user.

Every method returns the decoded JSON of Airflow 3.3's responses (see ``/openapi.json`` of the
api-server) and raises :class:`httpx.HTTPStatusError` on an error status, except
:meth:`AirflowClient.request`, which returns the raw response for tests about status codes.
Waiting methods poll and raise :class:`TimeoutError` with the last state seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
FINISHED = ("success", "failed")
"""Terminal DAG run states."""


class AirflowClient:
    """Logged in as ``username`` (``POST /auth/token`` of the simple auth manager)."""

    def __init__(self, url: str, username: str, password: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.username = username
        login = httpx.post(
            f"{url}/auth/token", json={"username": username, "password": password}, timeout=timeout
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        self.http = httpx.Client(
            base_url=f"{url}/api/v2",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- raw -------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``method`` ``/api/v2{path}``, the response as it is (no status check)."""
        return self.http.request(method, path, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, but raise on an error status and return the JSON body."""
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    # --- DAGs and runs ---------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.call("GET", f"/dags/{dag_id}")  # type: ignore[no-any-return]

    def wait_for_dag(self, dag_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id`` (``GET /dags/{id}`` is 200)."""
        found = self._poll(
            lambda: self.request("GET", f"/dags/{dag_id}"),
            lambda r: r.status_code == 200,
            timeout,
            f"DAG {dag_id} parsed",
        )
        return found.json()  # type: ignore[no-any-return]

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, **fields: Any) -> str:
        """Unpause ``dag_id`` and start a run now (``logical_date`` null); return its run id.
        ``fields``: more of the request body, e.g. ``dag_run_id="mine"``, ``note="..."``."""
        self.unpause(dag_id)
        body = {"logical_date": None, "conf": conf or {}, **fields}
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]  # type: ignore[no-any-return]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")  # type: ignore[no-any-return]

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float = 120.0, states: Iterable[str] = FINISHED
    ) -> dict[str, Any]:
        """Poll the run until its state is one of ``states`` (default: finished); return it."""
        wanted = set(states)
        return self._poll(
            lambda: self.dag_run(dag_id, run_id),
            lambda run: run["state"] in wanted,
            timeout,
            f"run {dag_id}/{run_id} in {sorted(wanted)}",
        )

    # --- task instances --------------------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included (one per map index), sorted by
        task id and map index."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(found), "order_by": "id"},  # a stable order
            )
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return sorted(found, key=lambda ti: (ti["task_id"], ti["map_index"]))

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> dict[str, Any]:
        """One task instance (``id``, ``state``, ``try_number``, ``pid``, ``hostname``, ...)."""
        suffix = f"/{map_index}" if map_index >= 0 else ""
        return self.call(  # type: ignore[no-any-return]
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{suffix}"
        )

    def wait_for_task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: Iterable[str],
        *,
        map_index: int = -1,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Poll a task instance until its state is one of ``states`` (e.g. ``"deferred"``)."""
        wanted = set(states)
        return self._poll(
            lambda: self._task_or_none(dag_id, run_id, task_id, map_index),
            lambda ti: ti is not None and ti["state"] in wanted,
            timeout,
            f"{dag_id}/{run_id}/{task_id}[{map_index}] in {sorted(wanted)}",
        )

    def tries(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> list[dict[str, Any]]:
        """The task instance's tries (history), oldest first."""
        suffix = f"/{map_index}" if map_index >= 0 else ""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{suffix}/tries"
        return self.call("GET", path)["task_instances"]  # type: ignore[no-any-return]

    def set_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, *, map_index: int | None = None
    ) -> list[dict[str, Any]]:
        """Mark a task instance ``"failed"``, ``"success"`` or ``"skipped"`` as a user does in
        the UI (a running or deferred task is then stopped). ``map_index=None``: every map
        index of the task (the one instance of an unmapped task). Returns the instances."""
        suffix = f"/{map_index}" if map_index is not None else ""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{suffix}"
        return self.call("PATCH", path, json={"new_state": state})["task_instances"]  # type: ignore[no-any-return]

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """The value of an XCom, deserialized (``deserialize=true``: without it the API answers
        the stored JSON text); :class:`KeyError` when there is none."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        response = self.request("GET", path, params={"map_index": map_index, "deserialize": True})
        if response.status_code == 404:
            raise KeyError(f"no XCom {key!r} of {dag_id}/{run_id}/{task_id}[{map_index}]")
        response.raise_for_status()
        return response.json()["value"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task log of one try as text, one line per event (the trigger's lines included
        for a deferred task)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.call(
            "GET",
            path,
            params={"map_index": map_index, "full_content": True},
            headers={"Accept": "application/json"},
        )
        lines = []
        for entry in body["content"]:
            if isinstance(entry, dict):
                lines.append(" ".join(str(entry[k]) for k in ("level", "event") if entry.get(k)))
            else:
                lines.append(str(entry))
        return "\n".join(lines)

    # --- internals -------------------------------------------------------------------------

    def _task_or_none(
        self, dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> dict[str, Any] | None:
        try:
            return self.task_instance(dag_id, run_id, task_id, map_index)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:  # a mapped instance not expanded yet
                return None
            raise

    @staticmethod
    def _poll(probe: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = probe()
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                busy = not isinstance(exc, httpx.HTTPStatusError) or exc.response.status_code >= 500
                if not busy or time.monotonic() > deadline:  # a busy api-server is no answer yet
                    raise
                time.sleep(0.5)
                continue
            if done(value):
                return value
            if time.monotonic() > deadline:
                shown = value.text[:500] if isinstance(value, httpx.Response) else value
                raise TimeoutError(f"waited {timeout:.0f} s for {what}; last: {shown}")
            time.sleep(0.5)
