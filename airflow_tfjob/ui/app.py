"""The TFJobs page's FastAPI app, mounted by the plugin at ``/tfjob`` in the api-server.

Every API route needs a logged-in Airflow user (the UI's ``_token`` cookie or a bearer token).
What the page trusts, and what it does not (``docs/orphans.md``, "Who sees which job"):

- places: only each connection of ``[tfjob] ui_connections`` with each namespace of
  ``ui_namespaces`` (none: the connection's own) — never a place a request names that they do not;
- jobs: only those carrying this deployment's labels (``naming.labelled_identity``: managed-by,
  ``[tfjob] deployment``, and identity labels that agree with the identity annotations);
- access: from that identity, and only when its task instance exists in Airflow's metadata DB;
  the user must be allowed to read its DAG (to edit it, to delete the job).

Any other job does not exist for the page: not listed, its detail (and log) and DELETE are 404.
"""

from __future__ import annotations

import datetime
import logging
from functools import cache
from importlib import resources
from typing import Any, Literal

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from airflow_tfjob import errors
from airflow_tfjob.spec import naming, orphans, status
from airflow_tfjob.ui import rows, settings, tasks

LOG_LINES = 50
log = logging.getLogger(__name__)
app = FastAPI(title="TFJobs", docs_url=None, redoc_url=None, openapi_url=None)


@cache
def _page() -> str:
    return resources.files("airflow_tfjob.ui").joinpath("page.html").read_text(encoding="utf-8")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _readable(user: Any, method: Literal["GET", "PUT"] = "GET") -> set[str]:
    """The DAGs this user may read (``PUT``: edit)."""
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method=method))


def _hook(conn_id: str) -> Any:
    from airflow_tfjob.hooks.tfjob import TFJobHook

    return TFJobHook(conn_id, max_attempts=1)  # a page waits for nobody: say it, do not retry


def _unreachable(conn_id: str, namespace: str | None, exc: Exception) -> str:

    where = f"connection {conn_id!r}" + (f", namespace {namespace!r}" if namespace else "")
    detail = str(exc) if isinstance(exc, errors.TFJobError) else type(exc).__name__
    return f"cannot reach the cluster of {where}: {detail}"


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> str:
    """The page itself (it fetches ``api/jobs`` every few seconds)."""
    return _page()


@app.get("/api/jobs")
def jobs(user: GetUserDep) -> dict[str, Any]:
    """Every TFJob this deployment created in the configured places, that this user may see."""
    readable, now, out = _readable(user), _now(), []
    deployment, found_jobs = settings.deployment(), []
    for conn_id, configured in settings.targets():
        target: dict[str, Any] = {"conn_id": conn_id, "namespace": configured, "jobs": []}
        try:
            hook = _hook(conn_id)
            target["namespace"] = namespace = _namespace(hook, configured)
            found, _ = hook.list_jobs(namespace, label_selector=naming.selector(deployment))
        except Exception as exc:
            target["error"] = _unreachable(conn_id, target["namespace"], exc)
            out.append(target)
            continue
        for obj in found:
            identity = naming.labelled_identity(obj, deployment)
            if identity and identity["dag_id"] in readable:
                found_jobs.append((target, obj, identity))
        out.append(target)
    states = tasks.states(identity for _, _, identity in found_jobs)
    editable = _readable(user, "PUT") if found_jobs else set()
    for target, obj, identity in found_jobs:
        task = states.get(tasks.key(identity))
        if task is None:  # no such task instance in this Airflow: not a job of ours to show
            continue
        row = rows.job_row(obj, conn_id=target["conn_id"], now=now)
        can_delete = identity["dag_id"] in editable
        target["jobs"].append(rows.with_task(row, obj, task, now=now, can_delete=can_delete))
    for target in out:
        target["jobs"].sort(key=lambda r: r["created"] or "", reverse=True)
    return {"generated_at": now.isoformat(), "ui_base": settings.ui_base(), "targets": out}


def _namespace(hook: Any, configured: str | None) -> str:
    """The namespace a configured place names (``None``: the connection's own)."""
    return configured or hook.get_namespace() or "default"


@app.get("/api/jobs/{conn_id}/{namespace}/{name}")
def job(conn_id: str, namespace: str, name: str, user: GetUserDep) -> dict[str, Any]:
    """One job: conditions, pods, and the chief's (or worker 0's) last log lines."""

    hook, obj = _read(conn_id, namespace, name)
    identity, task = _visible(obj, user, namespace, name)
    try:
        pods, _ = hook.list_pods(name, namespace)
    except Exception as exc:
        raise HTTPException(503, _unreachable(conn_id, namespace, exc)) from None
    log: list[str] = []
    replica = rows.log_replica(obj)
    pod = next((p for p in pods if status.replica_name(p) == replica), None)
    if pod is not None:
        try:
            text = hook.read_log(pod["metadata"]["name"], namespace, tail_lines=LOG_LINES)
            log = text.splitlines()
        except errors.TFJobError as exc:
            log = [f"(no log: {exc})"]
    now = _now()
    detail = rows.job_detail(obj, pods, log, conn_id=conn_id, now=now)
    can_delete = identity["dag_id"] in _readable(user, "PUT")
    detail = rows.with_task(detail, obj, task, now=now, can_delete=can_delete)
    return {**detail, "ui_base": settings.ui_base()}


Task = tuple[str | None, Any]
"""A task instance's ``(state, end_date)``."""


def _visible(
    obj: dict[str, Any], user: Any, namespace: str, name: str
) -> tuple[dict[str, Any], Task]:
    """The job's task identity and its task instance, when the job is this deployment's (its
    labels), its task instance exists, and this user may read its DAG; else: not found."""
    identity = naming.labelled_identity(obj, settings.deployment())
    task = None
    if identity is not None and identity["dag_id"] in _readable(user):
        task = tasks.states([identity]).get(tasks.key(identity))
    if identity is None or task is None:
        raise HTTPException(404, f"TFJob {namespace}/{name} not found")  # not: "forbidden"
    return identity, task


def _read(conn_id: str, namespace: str, name: str) -> tuple[Any, dict[str, Any]]:
    """The job, read only from a configured place (a connection of ``[tfjob] ui_connections``,
    a namespace of ``ui_namespaces``): any other connection or namespace is not found."""
    places = [n for c, n in settings.targets() if c == conn_id]
    if not places:
        raise HTTPException(404, f"connection {conn_id!r} is not one of [tfjob] ui_connections")
    hook = _hook(conn_id)
    try:
        if namespace not in {_namespace(hook, configured) for configured in places}:
            raise HTTPException(
                404, f"namespace {namespace!r} is not one the TFJobs page serves for {conn_id!r}"
            )
        return hook, hook.get(name, namespace)
    except errors.TFJobNotFound:
        raise HTTPException(404, f"TFJob {namespace}/{name} not found") from None
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(503, _unreachable(conn_id, namespace, exc)) from None


@app.delete("/api/jobs/{conn_id}/{namespace}/{name}")
def delete_orphan(conn_id: str, namespace: str, name: str, user: GetUserDep) -> dict[str, Any]:
    """Delete a job that outlives its task instance; only for users who may edit its DAG."""

    hook, obj = _read(conn_id, namespace, name)
    identity, task = _visible(obj, user, namespace, name)
    if identity["dag_id"] not in _readable(user, "PUT"):
        raise HTTPException(
            403, f"deleting a TFJob needs edit access to DAG {identity['dag_id']!r}"
        )
    verdict = orphans.check(obj, task[0])
    if verdict is None:
        raise HTTPException(409, f"TFJob {namespace}/{name} is not an orphan: its task follows it")
    uid = obj["metadata"]["uid"]
    try:
        hook.delete(name, namespace, uid=uid)
    except errors.TFJobError as exc:
        raise HTTPException(503, _unreachable(conn_id, namespace, exc)) from None
    log.warning(
        "User %s deleted orphaned TFJob %s/%s (uid %s) of task instance %s.%s[%s] of run %s "
        "from the TFJobs page: %s", user.get_name(), namespace, name, uid, identity["dag_id"],
        identity["task_id"], identity["map_index"], identity["run_id"], verdict.reason,
    )  # fmt: skip
    return {"deleted": f"{namespace}/{name}", "uid": uid, "reason": verdict.reason}
