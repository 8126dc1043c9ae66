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

The task-instance tab (``task``, Airflow's UI fills in the task instance) asks ``api/task`` for
that task instance's jobs under the same rules: 404 unless the task instance exists and the user
may read its DAG; then its jobs, found by their identity labels in the configured places. Every
URL the pages use is relative, so they work when Airflow is served under a sub-path.
"""

from __future__ import annotations

import datetime
import logging
from functools import cache
from importlib import resources
from typing import Any, Literal

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import HTMLResponse

from airflow_tfjob import errors
from airflow_tfjob.backends.kubernetes import logcursor
from airflow_tfjob.model import naming
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.model.naming import TaskIdentity
from airflow_tfjob.operators import _settings as settings
from airflow_tfjob.rules import orphans, status
from airflow_tfjob.ui import rows, tasks

LOG_LINES = 50
TAIL = logcursor.TAIL_LINES
"""Log lines of a failed replica in the failure report (as many as the task's report has)."""
STATIC = {"tfjob.css": "text/css", "tfjob.js": "text/javascript"}
"""What both pages load from ``static/``: their style and their shared script."""
log = logging.getLogger(__name__)
app = FastAPI(title="TFJobs", docs_url=None, redoc_url=None, openapi_url=None)


@cache
def _asset(name: str) -> str:
    return resources.files("airflow_tfjob.ui").joinpath(name).read_text(encoding="utf-8")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _readable(user: Any, method: Literal["GET", "PUT"] = "GET") -> set[str]:
    """The DAGs this user may read (``PUT``: edit)."""
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method=method))


def _hook(conn_id: str) -> Any:
    from airflow_tfjob.hooks.tfjob import TFJobHook

    return TFJobHook(conn_id, max_attempts=1)  # a page waits for nobody: say it, do not retry


def _listed(hook: Any, namespace: str, selector: str) -> list[tuple[Any, KubeObject]]:
    """``(hook, job)`` for the jobs of every API the connection's jobs may be of (a TFJob, a
    TrainJob: ``TFJobHook.served_hooks``)."""
    out: list[tuple[Any, KubeObject]] = []
    for one in hook.served_hooks(namespace):
        objs, _ = one.list_jobs(namespace, label_selector=selector)
        out.extend((one, obj) for obj in objs)
    return out


def _pods_by_job(listed: list[tuple[Any, KubeObject]], namespace: str) -> dict[str, list[Any]]:
    """The pods of each listed TrainJob, by job name: its replica counts are in its pods only
    (a TFJob's status has them). One pod list per TrainJob API and refresh, none without."""
    out: dict[str, list[Any]] = {}
    hooks = {id(h): h for h, _ in listed if h.job_api.name == "trainjob"}
    for hook in hooks.values():
        for pod in hook.list_pods(None, namespace)[0]:
            job = ((pod.get("metadata") or {}).get("labels") or {}).get(status.JOB_NAME_LABEL)
            out.setdefault(str(job), []).append(pod)
    return out


def _unreachable(conn_id: str, namespace: str | None, exc: Exception) -> str:

    where = f"connection {conn_id!r}" + (f", namespace {namespace!r}" if namespace else "")
    detail = str(exc) if isinstance(exc, errors.TFJobError) else type(exc).__name__
    return f"cannot reach the cluster of {where}: {detail}"


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> str:
    """The page itself (it fetches ``api/jobs`` every few seconds)."""
    return _asset("page.html")


@app.get("/task", response_class=HTMLResponse, include_in_schema=False)
def task_page() -> str:
    """The task-instance tab; it reads the task instance from its query (which Airflow's UI
    fills in) and fetches ``api/task`` every few seconds."""
    return _asset("task.html")


@app.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """The pages' style sheet and shared script (nothing else)."""
    if name not in STATIC:
        raise HTTPException(404, f"{name!r} not found")
    return Response(_asset(name), media_type=STATIC[name])


@app.get("/api/jobs")
def jobs(user: GetUserDep) -> dict[str, Any]:
    """Every job (TFJob, TrainJob) this deployment created in the configured places, that this
    user may see."""
    readable, now, out = _readable(user), _now(), []
    deployment, found_jobs = settings.deployment(), []
    for conn_id, configured in settings.targets():
        target: dict[str, Any] = {"conn_id": conn_id, "namespace": configured, "jobs": []}
        try:
            hook = _hook(conn_id)
            target["namespace"] = namespace = _namespace(hook, configured)
            found = _listed(hook, namespace, naming.selector(deployment))
            pods = _pods_by_job(found, namespace)
        except Exception as exc:
            target["error"] = _unreachable(conn_id, target["namespace"], exc)
            out.append(target)
            continue
        for _, obj in found:
            identity = naming.labelled_identity(obj, deployment)
            if identity and identity["dag_id"] in readable:
                name = (obj.get("metadata") or {}).get("name", "")
                found_jobs.append((target, obj, identity, pods.get(name, [])))
        out.append(target)
    states = tasks.states(identity for _, _, identity, _ in found_jobs)
    editable = _readable(user, "PUT") if found_jobs else set()
    for target, obj, identity, job_pods in found_jobs:
        task = states.get(tasks.key(identity))
        if task is None:  # no such task instance in this Airflow: not a job of ours to show
            continue
        row = rows.job_row(obj, conn_id=target["conn_id"], now=now, pods=job_pods)
        can_delete = identity["dag_id"] in editable
        marks = rows.task_marks(obj, task, now=now, can_delete=can_delete)
        target["jobs"].append({**row, **marks})
    for target in out:
        target["jobs"].sort(key=lambda r: r["created"] or "", reverse=True)
    return {"generated_at": now.isoformat(), "ui_base": settings.ui_base(), "targets": out}


@app.get("/api/task")
def task_jobs(
    user: GetUserDep, dag_id: str, run_id: str, task_id: str, map_index: str = "-1"
) -> dict[str, Any]:
    """The jobs of one task instance (every try's, newest first), each with its detail: pods,
    failure report, the chief's (or worker 0's) last log lines. 404 unless the task instance
    exists and the user may read its DAG."""
    index = _map_index(map_index)
    identity: TaskIdentity = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "map_index": index,
    }
    task = None
    if dag_id in _readable(user):
        task = tasks.states([identity]).get(tasks.key(identity))
    if task is None:  # not: "forbidden"
        raise HTTPException(404, f"task instance {_named(identity)} not found")
    now = _now()
    found, unreachable = _task_jobs(identity)
    can_delete = bool(found) and dag_id in _readable(user, "PUT")
    shown = [
        {
            **_detail(hook, conn_id, obj, now=now, replica=None),
            **rows.task_marks(obj, task, now=now, can_delete=can_delete),
        }
        for conn_id, hook, obj in found
    ]
    shown.sort(key=lambda r: (r["created"] or "", r["try_number"] or 0), reverse=True)
    return {
        "generated_at": now.isoformat(),
        "ui_base": settings.ui_base(),
        "task": identity,
        "task_state": task[0],
        "errors": unreachable,
        "jobs": shown,
    }


def _map_index(value: str) -> int:
    """The tab's map index. Airflow's UI fills ``{MAP_INDEX}`` in only for a mapped task
    instance (only its route has one): left as it is, or empty, it is -1."""
    text = value.strip()
    if text in {"", "{MAP_INDEX}"}:
        return -1
    try:
        return int(text)
    except ValueError:
        raise HTTPException(400, f"map_index must be a whole number, not {value!r}") from None


def _named(identity: TaskIdentity) -> str:
    return (
        f"{identity['dag_id']}.{identity['task_id']}[{identity['map_index']}] "
        f"of run {identity['run_id']}"
    )


def _task_jobs(identity: TaskIdentity) -> tuple[list[tuple[str, Any, KubeObject]], list[str]]:
    """This deployment's jobs of one task instance, of every try, in the configured places
    (selected by its identity labels, kept when ``naming.labelled_identity`` agrees), and why
    a place could not be read."""
    deployment = settings.deployment()
    labels = naming.identity(
        naming.task_labels(
            identity["dag_id"], identity["task_id"], identity["run_id"], identity["map_index"], 0
        )
    )
    selector = ",".join([naming.selector(deployment), *(f"{k}={v}" for k, v in labels.items())])
    found: list[tuple[str, Any, KubeObject]] = []
    unreachable: list[str] = []
    for conn_id, configured in settings.targets():
        namespace = configured
        try:
            hook = _hook(conn_id)
            namespace = _namespace(hook, configured)
            listed = _listed(hook, namespace, selector)
        except Exception as exc:
            unreachable.append(_unreachable(conn_id, namespace, exc))
            continue
        found.extend(
            (conn_id, one, obj)
            for one, obj in listed
            if naming.labelled_identity(obj, deployment) == identity
        )
    return found, unreachable


def _namespace(hook: Any, configured: str | None) -> str:
    """The namespace a configured place names (``None``: the connection's own)."""
    return configured or hook.get_namespace() or "default"


@app.get("/api/jobs/{conn_id}/{namespace}/{name}")
def job(
    conn_id: str, namespace: str, name: str, user: GetUserDep, replica: str | None = None
) -> dict[str, Any]:
    """One job: conditions, pods, the failure report, and the last log lines of ``replica``
    (default: the chief, or worker 0 without one)."""

    hook, obj = _read(conn_id, namespace, name)
    identity, task = _visible(obj, user, namespace, name)
    now = _now()
    detail = _detail(hook, conn_id, obj, now=now, replica=replica)
    can_delete = identity["dag_id"] in _readable(user, "PUT")
    marks = rows.task_marks(obj, task, now=now, can_delete=can_delete)
    return {**detail, **marks, "ui_base": settings.ui_base()}


def _detail(
    hook: Any, conn_id: str, obj: KubeObject, *, now: datetime.datetime, replica: str | None
) -> rows.JobDetail:
    """``rows.job_detail`` of a job the user may see, with its pods and a replica's log."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    try:
        pods, _ = hook.list_pods(name, namespace)
    except Exception as exc:
        raise HTTPException(503, _unreachable(conn_id, namespace, exc)) from None
    replica = replica or rows.log_replica(obj)
    pod = next((p for p in pods if status.replica_name(p) == replica), None)
    log = _log(hook, pod["metadata"]["name"], namespace, LOG_LINES) if pod else []

    def tail(failed: status.ReplicaOutcome) -> list[str]:
        try:
            return str(hook.read_log(failed.pod, namespace, tail_lines=TAIL)).splitlines()
        except errors.TFJobError:
            return []

    failure = rows.failure_report(obj, pods, tail)
    return rows.job_detail(
        obj, pods, log, conn_id=conn_id, now=now, replica=replica, failure=failure
    )


def _log(hook: Any, pod: str, namespace: str, lines: int) -> list[str]:
    """The last ``lines`` of a pod's ``tensorflow`` container, or why there are none."""
    try:
        return str(hook.read_log(pod, namespace, tail_lines=lines)).splitlines()
    except errors.TFJobError as exc:
        return [f"(no log: {exc})"]


Task = tuple[str | None, Any]
"""A task instance's ``(state, end_date)``."""


def _visible(obj: KubeObject, user: Any, namespace: str, name: str) -> tuple[TaskIdentity, Task]:
    """The job's task identity and its task instance, when the job is this deployment's (its
    labels), its task instance exists, and this user may read its DAG; else: not found."""
    identity = naming.labelled_identity(obj, settings.deployment())
    task = None
    if identity is not None and identity["dag_id"] in _readable(user):
        task = tasks.states([identity]).get(tasks.key(identity))
    if identity is None or task is None:
        raise HTTPException(404, f"TFJob {namespace}/{name} not found")  # not: "forbidden"
    return identity, task


def _read(conn_id: str, namespace: str, name: str) -> tuple[Any, KubeObject]:
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
        for one in hook.served_hooks(namespace):
            try:
                return one, one.get(name, namespace)
            except errors.TFJobNotFound:
                continue
        raise errors.TFJobNotFound(f"{name} not found")
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
