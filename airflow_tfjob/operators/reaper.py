"""``TFJobReaperOperator``: end the jobs (TFJobs, TrainJobs) that outlive their task instances.

Airflow tells a task when it is killed in most ways (``on_kill`` on the worker or in the
triggerer, ``execution_timeout``), and the task deletes its job then. It does not when a deferred
task is marked failed or success before a triggerer loaded its trigger, while the triggerer is
down, when a worker is SIGKILLed with no retries left, or when a DAG run is deleted. This task,
scheduled every few minutes (``dags/example_tfjob_reaper.py``), finds those jobs: every job
labelled with this deployment (``[tfjob] deployment``), of each API a connection's jobs may be of
(``TFJobHook.served_hooks``: TFJobs, TrainJobs), in the connections and namespaces of
``[tfjob] ui_connections``/``ui_namespaces``, whose task instance Airflow reports ended (or no
longer has) while the job is not finished. It reads them twice, ``grace_seconds`` apart, and
deletes those still orphaned (or keeps them, when their task says ``on_kill_action='keep_tfjob'``)
with a log line naming the job, the task instance and why.

It touches no job without this deployment's label, and none whose DAG this Airflow does not know
(another deployment labelled the same, or a deleted DAG): those are logged, not deleted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from airflow.sdk import BaseOperator

from airflow_tfjob import errors, features
from airflow_tfjob.model import naming
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.model.naming import TaskIdentity
from airflow_tfjob.operators import _settings
from airflow_tfjob.rules import orphans

if TYPE_CHECKING:
    from airflow_tfjob.hooks.tfjob import TFJobHook


class Reaped(TypedDict):
    """The reaper's XCom ``return_value``."""

    checked: int
    """How many jobs were read."""
    deleted: list[str]
    """The orphans deleted, as ``namespace/name``."""
    kept: list[str]
    """The orphans kept (their task says ``on_kill_action='keep_tfjob'``)."""
    unknown_dags: list[str]
    """DAGs this Airflow does not know, whose jobs were left alone."""


Source = tuple[str, str]
"""``(connection, API)`` a job was found through: ``("kubernetes_default", "trainjob")``."""


@dataclass(frozen=True)
class _Suspect:
    conn_id: Source
    job: KubeObject
    task: TaskIdentity
    orphan: orphans.Orphan

    @property
    def where(self) -> str:
        meta = self.job["metadata"]
        return f"{meta['namespace']}/{meta['name']}"

    @property
    def task_instance(self) -> str:
        t = self.task
        index = f"[{t['map_index']}]" if t["map_index"] >= 0 else ""
        return f"{t['dag_id']}.{t['task_id']}{index} of run {t['run_id']}"


class TFJobReaperOperator(BaseOperator):
    """Delete the jobs (TFJobs, TrainJobs) of this deployment that outlive their task instances.

    :param grace_seconds: How long a job must stay an orphan before it is deleted (read twice,
        this far apart); default: ``[tfjob] reaper_grace_seconds`` (30).
    :param targets: ``(connection, namespace)`` pairs to cover (``None``: the connection's own
        namespace); default: those of ``[tfjob] ui_connections`` and ``ui_namespaces``.
    :param report_only: Log what would be deleted, delete nothing.

    Returns (XCom) ``{"checked", "deleted", "kept", "unknown_dags"}``: how many jobs were read,
    and the orphans deleted or kept, as ``namespace/name`` strings.
    """

    ui_color = "#c0392b"

    def __init__(
        self,
        *,
        grace_seconds: float | None = None,
        targets: Sequence[tuple[str, str | None]] | None = None,
        report_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.grace_seconds, self.targets, self.report_only = grace_seconds, targets, report_only

    def execute(self, context: Any) -> Reaped:
        ti = context["ti"]
        self._hooks: dict[Source, TFJobHook] = {}
        """(connection, API) -> its hook, built once per run."""
        self._dags: dict[str, bool] = {}
        """DAG id -> whether this Airflow knows it, asked once per run."""
        deployment = _settings.deployment()
        found = list(self._scan(deployment))
        suspects = self._judge(ti, found)
        grace = _settings.reaper_grace() if self.grace_seconds is None else self.grace_seconds
        self.log.info(
            "%d TFJobs of deployment %r, %d orphaned at first sight", len(found), deployment,
            len(suspects),
        )  # fmt: skip
        if suspects and grace > 0:
            self.log.info("Reading them again in %.0f s", grace)
            time.sleep(grace)
            again = [(s.conn_id, job) for s in suspects if (job := self._reread(s)) is not None]
            suspects = self._judge(ti, again)
        deleted, kept, failed = [], [], []
        for suspect in suspects:
            if suspect.orphan.keep:
                self.log.warning(
                    "Keeping orphaned TFJob %s of task instance %s (on_kill_action="
                    "'keep_tfjob'): %s", suspect.where, suspect.task_instance,
                    suspect.orphan.reason,
                )  # fmt: skip
                kept.append(suspect.where)
            elif (done := self._delete(suspect)) is None:
                failed.append(suspect.where)
            elif done:
                deleted.append(suspect.where)
        if failed:
            from airflow.providers.common.compat.sdk import AirflowException

            raise AirflowException(f"could not delete orphaned TFJob(s) {', '.join(failed)}")
        return {
            "checked": len(found),
            "deleted": deleted,
            "kept": kept,
            "unknown_dags": sorted(d for d, known in self._dags.items() if not known),
        }

    def _scan(self, deployment: str) -> Iterable[tuple[Source, KubeObject]]:
        """Every job of this deployment, with the connection and API it was found through
        (each API the connection's jobs may be of: a TFJob and a TrainJob are both tasks')."""
        from airflow_tfjob.hooks.tfjob import TFJobHook

        for conn_id, namespace in self.targets or _settings.targets():
            first = TFJobHook(conn_id)
            place = namespace or first.get_namespace() or "default"
            for hook in first.served_hooks(place):
                source = (conn_id, hook.job_api.name)
                self._hooks[source] = hook
                jobs, _ = hook.list_jobs(place, label_selector=naming.selector(deployment))
                for job in jobs:
                    yield source, job

    def _reread(self, suspect: _Suspect) -> KubeObject | None:
        meta = suspect.job["metadata"]
        try:
            job = self._hooks[suspect.conn_id].get(meta["name"], meta["namespace"])
        except errors.TFJobNotFound:
            return None
        return job if job["metadata"].get("uid") == meta.get("uid") else None

    def _judge(self, ti: Any, found: list[tuple[Source, KubeObject]]) -> list[_Suspect]:
        """The orphans among ``found``, asking Airflow for their task instances' states (one
        request per DAG); the jobs of DAGs Airflow does not know are left alone."""
        by_dag: dict[str, list[tuple[Source, KubeObject, TaskIdentity]]] = {}
        for conn_id, job in found:
            task = naming.task_identity(job)
            if task is not None:
                by_dag.setdefault(task["dag_id"], []).append((conn_id, job, task))
        suspects = []
        for dag_id, jobs in sorted(by_dag.items()):
            if not self._known(ti, dag_id, len(jobs)):
                continue
            states = self._states(ti, dag_id, [task for _, _, task in jobs])
            for conn_id, job, task in jobs:
                key = orphans.state_key(task["task_id"], task["map_index"])
                verdict = orphans.check(job, orphans.task_state(states, task["run_id"], key))
                if verdict is not None:
                    suspects.append(_Suspect(conn_id, job, task, verdict))
        return suspects

    def _known(self, ti: Any, dag_id: str, jobs: int) -> bool:
        """Whether this Airflow knows the DAG (asked once per run; the first "no" is logged)."""
        if dag_id not in self._dags:
            self._dags[dag_id] = _knows(ti, dag_id, self.log)
            if not self._dags[dag_id]:
                self.log.warning(
                    "Not touching %d TFJob(s) of DAG %r: this Airflow does not know the "
                    "DAG (deleted, or another deployment labelled %r: set [tfjob] "
                    "deployment)", jobs, dag_id, _settings.deployment(),
                )  # fmt: skip
        return self._dags[dag_id]

    def _states(self, ti: Any, dag_id: str, tasks: list[TaskIdentity]) -> dict[str, dict[str, Any]]:
        """``{run_id: {task key: state}}`` for these task instances."""
        answer: dict[str, dict[str, Any]] = ti.get_task_states(
            dag_id=dag_id,
            run_ids=sorted({t["run_id"] for t in tasks}),
            task_ids=sorted({t["task_id"] for t in tasks}),
        )
        return answer

    def _delete(self, suspect: _Suspect) -> bool | None:
        """Delete the orphan: True when deleted, False when nothing was (already gone, or
        ``report_only``), ``None`` when the API refused."""
        meta = suspect.job["metadata"]
        if self.report_only:
            self.log.warning(
                "Would delete orphaned TFJob %s of task instance %s (report_only): %s",
                suspect.where, suspect.task_instance, suspect.orphan.reason,
            )  # fmt: skip
            return False
        try:
            done: bool = self._hooks[suspect.conn_id].delete(
                meta["name"], meta["namespace"], uid=meta["uid"]
            )
        except errors.TFJobError as exc:
            self.log.error("Could not delete orphaned TFJob %s: %s", suspect.where, exc)
            return None
        if done:
            self.log.warning(
                "Deleted orphaned TFJob %s (uid %s) of task instance %s: %s",
                suspect.where, meta["uid"], suspect.task_instance, suspect.orphan.reason,
            )  # fmt: skip
        return done


def _knows(ti: Any, dag_id: str, log: Any) -> bool:
    """Whether this Airflow knows DAG ``dag_id``: ``get_dag`` (Airflow 3.2+); before it, whether
    the DAG has a run (a DAG all of whose runs were deleted counts as unknown there: its jobs
    stay, which the log says once)."""
    if not features.get_dag():
        features.say_once(
            log,
            "get_dag",
            "This Airflow (before 3.2) cannot tell a task whether it knows a DAG: the reaper "
            "takes a DAG as known when it has a run, and leaves the jobs of a DAG without runs",
        )
        return bool(ti.get_dr_count(dag_id=dag_id))
    try:
        ti.get_dag(dag_id)
    except Exception as exc:
        if not _not_found(exc):
            raise
        return False
    return True


def _not_found(exc: Exception) -> bool:
    """The execution API answered 404: through a worker's supervisor (``AirflowRuntimeError``)
    or, in ``dag.test()``, directly (``ServerResponseError``)."""
    detail = getattr(getattr(exc, "error", None), "detail", None)
    if isinstance(detail, dict):
        return detail.get("status_code") == 404
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) == 404
