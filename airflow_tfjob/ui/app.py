"""The TFJobs page's FastAPI app, mounted by the plugin at ``/tfjob`` in the api-server.

Every API route needs a logged-in Airflow user (the UI's ``_token`` cookie or a bearer token)
and shows only the jobs of DAGs that user may read, asked of Airflow's auth manager. Clusters are
reached through the provider's hook, for the connections and namespaces ``[tfjob] ui_connections``
and ``ui_namespaces`` name — never a connection a request names that the config does not.
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


def _ours(obj: dict[str, Any], deployment: str) -> bool:
    """A job of this Airflow deployment, or one made before jobs carried the label."""
    found = orphans.deployment(obj)
    return found is None or found == naming.label_value(deployment)


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
    """Every TFJob created by Airflow in the configured places, that this user may see."""
    readable, now, out = _readable(user), _now(), []
    deployment, found_jobs = settings.deployment(), []
    for conn_id, configured in settings.targets():
        target: dict[str, Any] = {"conn_id": conn_id, "namespace": configured, "jobs": []}
        try:
            hook = _hook(conn_id)
            target["namespace"] = namespace = configured or hook.get_namespace() or "default"
            found, _ = hook.list_jobs(namespace, label_selector=rows.SELECTOR)
        except Exception as exc:
            target["error"] = _unreachable(conn_id, target["namespace"], exc)
            out.append(target)
            continue
        for obj in found:
            identity = rows.task_identity(obj)
            if identity and identity["dag_id"] in readable and _ours(obj, deployment):
                found_jobs.append((target, obj, identity))
        out.append(target)
    states = tasks.states(identity for _, _, identity in found_jobs)
    editable = _readable(user, "PUT") if found_jobs else set()
    for target, obj, identity in found_jobs:
        row = rows.job_row(obj, conn_id=target["conn_id"], now=now)
        task = states.get(tasks.key(identity))
        can_delete = identity["dag_id"] in editable
        target["jobs"].append(rows.with_task(row, obj, task, now=now, can_delete=can_delete))
    for target in out:
        target["jobs"].sort(key=lambda r: r["created"] or "", reverse=True)
    return {"generated_at": now.isoformat(), "ui_base": settings.ui_base(), "targets": out}


@app.get("/api/jobs/{conn_id}/{namespace}/{name}")
def job(conn_id: str, namespace: str, name: str, user: GetUserDep) -> dict[str, Any]:
    """One job: conditions, pods, and the chief's (or worker 0's) last log lines."""

    hook, obj = _read(conn_id, namespace, name)
    identity = _visible(obj, user, namespace, name)
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
    task = tasks.states([identity]).get(tasks.key(identity))
    can_delete = identity["dag_id"] in _readable(user, "PUT")
    detail = rows.with_task(detail, obj, task, now=now, can_delete=can_delete)
    return {**detail, "ui_base": settings.ui_base()}


def _visible(obj: dict[str, Any], user: Any, namespace: str, name: str) -> dict[str, Any]:
    """The job's task identity, when this user may see the job (else: not found)."""
    identity = rows.task_identity(obj)
    if (
        identity is None
        or identity["dag_id"] not in _readable(user)
        or not _ours(obj, settings.deployment())
    ):
        raise HTTPException(404, f"TFJob {namespace}/{name} not found")  # not: "forbidden"
    return identity


def _read(conn_id: str, namespace: str, name: str) -> tuple[Any, dict[str, Any]]:

    if conn_id not in {c for c, _ in settings.targets()}:
        raise HTTPException(404, f"connection {conn_id!r} is not one of [tfjob] ui_connections")
    hook = _hook(conn_id)
    try:
        return hook, hook.get(name, namespace)
    except errors.TFJobNotFound:
        raise HTTPException(404, f"TFJob {namespace}/{name} not found") from None
    except Exception as exc:
        raise HTTPException(503, _unreachable(conn_id, namespace, exc)) from None


@app.delete("/api/jobs/{conn_id}/{namespace}/{name}")
def delete_orphan(conn_id: str, namespace: str, name: str, user: GetUserDep) -> dict[str, Any]:
    """Delete a job that outlives its task instance; only for users who may edit its DAG."""

    hook, obj = _read(conn_id, namespace, name)
    identity = _visible(obj, user, namespace, name)
    if identity["dag_id"] not in _readable(user, "PUT"):
        raise HTTPException(
            403, f"deleting a TFJob needs edit access to DAG {identity['dag_id']!r}"
        )
    task = tasks.states([identity]).get(tasks.key(identity))
    verdict = orphans.check(obj, task[0] if task is not None else orphans.GONE)
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
