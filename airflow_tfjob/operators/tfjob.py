"""``TFJobOperator``: run a Kubeflow TFJob (or TrainJob) from Airflow; its outcome through XCom.

Thin orchestration: the manifest comes from ``model`` (validated at DAG parse time), all API calls
go through ``hooks``, and the running, waiting and collecting is the backend's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow.configuration import conf
from airflow.sdk import BaseOperator, BaseOperatorLink

from airflow_tfjob import backends, errors, features
from airflow_tfjob.backends.kubernetes.request import (
    OnFinish,
    OnKill,
)
from airflow_tfjob.model import TfJob
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.operators import _build, _checks, _local, _settings, links
from airflow_tfjob.rules import outcome
from airflow_tfjob.rules.jobref import JobRef
from airflow_tfjob.rules.outcome import TFJobEvent
from airflow_tfjob.rules.report import Submitted, TaskResult
from airflow_tfjob.rules.trainjob import DERIVED_NAME_MAX

if TYPE_CHECKING:
    from airflow.sdk import Context
    from pydantic import JsonValue

    from airflow_tfjob.hooks.tfjob import TFJobHook

STATE_KEY = "tfjob"
DEADLINE_MARGIN_SECONDS = 5.0
BACKSTOP_MARGIN_SECONDS = 60
"""How much longer than the task's ``execution_timeout`` the job's backstop deadline is."""


class TFJobOperator(BaseOperator):
    """Submit a TFJob (or TrainJob: ``api``), wait for it, stream its logs, return its outcome.

    :param tfjob: The job, as a ``TfJob`` (validated when the DAG is parsed).
    :param tfjob_template: Instead of ``tfjob``: a TFJob manifest (or its spec) as a dict or a
        ``.yaml``/``.yml``/``.json`` file, Jinja-templated.
    :param image: Image for replica groups that do not set one.
    :param command: Default entrypoint for groups without one.
    :param args: Default arguments for groups without them.
    :param env: Environment added to every group (a group's own value wins).
    :param namespace: Namespace of the job; default: the connection's, else ``default``.
    :param kubernetes_conn_id: The ``kubernetes`` connection.
    :param config_file: A kubeconfig file, overriding the connection's.
    :param cluster_context: The kubeconfig context.
    :param in_cluster: Use the worker pod's service account.
    :param labels: Extra labels on the job.
    :param annotations: Extra annotations on the job.
    :param name: The job's name; default: ``<dag>-<task>-<hash>``, the same for every try.
    :param get_logs: Stream every replica's log into the task log.
    :param wait_until_finished: Wait for the job to finish (else return once it exists).
    :param poll_interval: Longest quiet period between progress checks, in seconds.
    :param deferrable: Wait in the triggerer instead of the worker.
    :param end_from_trigger: When deferred, end the task in the triggerer (XComs, failure report,
        ``on_finish_action``) instead of resuming on a worker: one worker run per task, and
        immune to the scheduler failing a task whose job finished fast. Set False to resume on a
        worker (``execute_complete``), e.g. for listeners such as OpenLineage.
    :param on_finish_action: ``delete_tfjob``, ``delete_succeeded_tfjob`` or ``keep_tfjob``.
    :param on_kill_action: ``delete_tfjob`` or ``keep_tfjob`` when the task is killed.
    :param startup_timeout_seconds: Fail when no replica runs this long after submission.
    :param deadline_backstop: With an ``execution_timeout`` and no ``active_deadline_seconds``
        in the job, submit it with ``activeDeadlineSeconds`` = the timeout + 60 s, so the
        job's controller (the training operator, or Trainer v2) ends a job that nobody follows
        any more.
    :param backend: ``kubernetes`` (a TFJob or TrainJob: ``api``) or ``local`` (the replicas as
        local processes on the worker, no cluster); default: ``[tfjob] backend``.
    :param api: On Kubernetes, ``tfjob`` or ``trainjob`` (Kubeflow Trainer v2, checked at parse
        time: docs/trainer-v2.md); default: the connection's ``tfjob_api``, else the cluster's.
    """

    template_fields: Sequence[str] = (
        "name",
        "namespace",
        "image",
        "command",
        "args",
        "env",
        "labels",
        "annotations",
        "tfjob_template",
        "cluster_context",
    )
    template_ext: Sequence[str] = (".yaml", ".yml", ".json")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "tfjob_template": "yaml",
        "env": "json",
        "labels": "json",
        "annotations": "json",
    }
    ui_color = "#ff9e1b"
    _submitted: JobRef | None = None
    """The job, once submitted or adopted (``execute_complete`` included)."""
    _active: backends.Run | None = None
    """The backend's run while ``execute`` waits for it (``on_kill`` stops it)."""

    def __init__(
        self,
        *,
        tfjob: TfJob | None = None,
        tfjob_template: Mapping[str, Any] | str | None = None,
        image: str | None = None,
        command: list[str] | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        namespace: str | None = None,
        kubernetes_conn_id: str | None = "kubernetes_default",
        config_file: str | None = None,
        cluster_context: str | None = None,
        in_cluster: bool | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        name: str | None = None,
        get_logs: bool = True,
        wait_until_finished: bool = True,
        poll_interval: float = 10.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        end_from_trigger: bool = True,
        on_finish_action: OnFinish = "delete_succeeded_tfjob",
        on_kill_action: OnKill = "delete_tfjob",
        startup_timeout_seconds: float | None = 600,
        deadline_backstop: bool = True,
        backend: str | None = None,
        api: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tfjob, self.tfjob_template = tfjob, tfjob_template
        self.image, self.command, self.args, self.env = image, command, args, env
        self.namespace, self.config_file = namespace, config_file
        self.kubernetes_conn_id = kubernetes_conn_id
        self.cluster_context, self.in_cluster = cluster_context, in_cluster
        self.labels, self.annotations, self.name = labels, annotations, name
        self.get_logs, self.wait_until_finished = get_logs, wait_until_finished
        self.poll_interval, self.api, self.deferrable = poll_interval, api, deferrable
        self.on_finish_action, self.on_kill_action = on_finish_action, on_kill_action
        self.startup_timeout_seconds = startup_timeout_seconds
        self.deadline_backstop = deadline_backstop
        # not `end_from_trigger`: Airflow refuses DAGs declaring that when listeners exist
        self.may_end_from_trigger = end_from_trigger
        self.backend = backends.check(backend or _local.default_backend())
        self.operator_extra_links = _extra_links(self.backend)
        self.tfjob_links: dict[str, str] = {}
        """Extra link name -> URL, once the job exists."""
        # a mapped task's values arrive when it runs: an error there fails it at once
        with errors.spec_errors_fail_the_task(running=errors.unmapped(self)):
            self._check_arguments()

    def _check_arguments(self, *, rendered: bool = False) -> None:
        """Every argument's type and range, so a mistake is an error when the DAG is parsed;
        values known only when the task runs are checked once ``rendered`` (``_checks``)."""
        _checks.check(self, rendered=rendered)

    @cached_property
    def hook(self) -> TFJobHook:
        """The sync hook for this task's connection settings."""
        from airflow_tfjob.hooks.tfjob import TFJobHook

        return TFJobHook(
            self.kubernetes_conn_id,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
            in_cluster=self.in_cluster,
            api=self.api,
        )

    def build_manifest(
        self, context: Context, connection_namespace: str | None = None, api: str | None = None
    ) -> tuple[KubeObject, dict[str, str]]:
        """The manifest this task submits, and the labels every try of its task instance shares.

        Its namespace: the task's ``namespace``, else the template's ``metadata.namespace``,
        else ``connection_namespace`` (the connection's), else ``default``; its derived name
        fits ``api``'s (``self.api`` by default).
        """
        trainjob = (api or self.api) == "trainjob"
        return _build.build(
            context=context,
            tfjob=self.tfjob,
            tfjob_template=self.tfjob_template,
            name=self.name,
            namespace=self.namespace,
            connection_namespace=connection_namespace,
            image=self.image,
            command=self.command,
            args=self.args,
            env=self.env,
            labels=self.labels,
            annotations=self.annotations,
            deployment=_settings.deployment(),
            provider_annotations=self._provider_annotations(),
            backstop_seconds=self._backstop_seconds(trainjob),
            **({"name_limit": DERIVED_NAME_MAX} if trainjob else {}),
        )

    def _provider_annotations(self) -> dict[str, str]:
        """What the reaper and the TFJobs page read off the job: a job submitted without
        waiting outlives its task on purpose; one to keep when the task is killed is kept."""
        from airflow_tfjob.rules import orphans

        found = {orphans.HANDED_OFF: "true"} if not self.wait_until_finished else {}
        if self.on_kill_action == "keep_tfjob":
            found[orphans.ON_KILL] = self.on_kill_action
        return found

    def _backstop_seconds(self, trainjob: bool = False) -> int | None:
        """``activeDeadlineSeconds`` for a job that sets none: a little more than the task's
        ``execution_timeout`` (none without one, or with ``deadline_backstop=False``; none for
        a TrainJob, whose deadline a retry adopting it could not raise: docs/trainer-v2.md)."""
        if trainjob or not self.deadline_backstop or self.execution_timeout is None:
            return None
        return math.ceil(self.execution_timeout.total_seconds()) + BACKSTOP_MARGIN_SECONDS

    def execute(self, context: Context) -> TaskResult | Submitted:
        # a wrong job description (a templated argument rendered wrong) fails without a retry
        with errors.spec_errors_fail_the_task():
            self._check_arguments(rendered=True)
            return self._execute(context)

    def _execute(self, context: Context) -> TaskResult | Submitted:
        if self.backend == "local":
            return self._run_local(context)
        from airflow_tfjob.backends.kubernetes import run
        from airflow_tfjob.backends.kubernetes.request import RunRequest

        namespace = None if self.namespace else self.hook.get_namespace()
        request = RunRequest(
            **self._request(context, namespace, self.hook.job_api.name),
            poll_interval=self.poll_interval,
            stored=_stored(context, self.log),
            on_submitted=lambda obj: self._on_submitted(context, obj),
        )
        backend = run.KubernetesRun(self.hook, request, on_kill_action=self.on_kill_action)
        if not self.wait_until_finished:
            return {**JobRef.of(backend.submit()).to_dict(), "state": "Submitted"}
        if self.deferrable:
            self._defer_unless_finished(backend)
        return self._drive(backend)

    def _request(
        self, context: Context, namespace: str | None = None, api: str | None = None
    ) -> dict[str, Any]:
        """What every backend's request holds: the manifest and how to follow it."""
        manifest, identity = self.build_manifest(context, namespace, api)
        return {
            "manifest": manifest,
            "identity": identity,
            "log": self.log,
            "get_logs": self.get_logs,
            "deadline": self._deadline(),
            "startup_timeout": self.startup_timeout_seconds,
            "on_finish_action": self.on_finish_action,
        }

    def _drive(self, backend: backends.Run) -> TaskResult:
        """Run the job on its backend; ``on_kill`` reaches it meanwhile."""
        self._active = backend
        try:
            return backend.run()
        except Exception as exc:
            if type(exc).__name__ == "AirflowTaskTimeout":
                backend.kill("the task's execution_timeout passed")
            raise
        finally:
            self._active = None

    def _run_local(self, context: Context) -> TaskResult:
        """Run the replicas as local processes on this worker and wait for them here."""
        from airflow_tfjob.backends.local.request import LocalRequest
        from airflow_tfjob.backends.local.run import LocalRun

        if self.deferrable:
            self.log.info("deferrable=True has no effect on the local backend: it runs here")
        request = LocalRequest(
            **self._request(context),
            run_root=_local.run_root(),
            threads=_local.threads(),
            stop_grace=_local.stop_grace(),
            on_submitted=lambda obj: self._push_identity(context, obj),
        )
        return self._drive(LocalRun(request))  # TFJobSpecError if a replica cannot run

    def _defer_unless_finished(self, backend: Any) -> None:
        """Submit or reattach here, then wait in the triggerer; a job already finished is not
        deferred (the caller collects it at once from the same submission)."""
        from airflow_tfjob.rules import status
        from airflow_tfjob.triggers import _ending
        from airflow_tfjob.triggers.tfjob import TFJobTrigger

        obj = backend.submit()
        if status.job_state(obj).is_terminal:
            return
        request = backend.request
        meta, policy = obj["metadata"], obj["spec"].get("runPolicy") or {}
        trigger = TFJobTrigger(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            settings=self.hook.trigger_settings(),
            deadline=request.deadline,
            active_deadline_seconds=policy.get("activeDeadlineSeconds"),
            get_logs=self.get_logs,
            poll_interval=self.poll_interval,
            on_kill_action=self.on_kill_action,
            startup_timeout_seconds=self.startup_timeout_seconds,
            ending=self.ending().to_dict(),
            end_from_trigger=_ending.in_triggerer(self.may_end_from_trigger, self.log),
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def ending(self) -> outcome.Ending:
        """What this task makes of its trigger's event, wherever the task ends."""
        return outcome.Ending(on_finish_action=self.on_finish_action)

    def execute_complete(self, context: Context, event: TFJobEvent) -> Any:
        """Resume after the trigger fired (when it did not end the task itself): clean up per
        ``on_finish_action``, return or raise, by the rules the trigger would apply."""
        from airflow_tfjob.backends.kubernetes import run

        self._submitted = JobRef.of(event)
        self._set_links(self._submitted)
        return run.complete(self.hook, self.log, self.ending(), event)

    def _deadline(self) -> float | None:
        if self.execution_timeout is None:
            return None
        seconds = self.execution_timeout.total_seconds()
        return time.time() + seconds - min(DEADLINE_MARGIN_SECONDS, seconds * 0.25)

    def _push_identity(self, context: Context, obj: KubeObject) -> None:
        """The job's identity, and the extra links, as XComs while it runs."""
        job, ti = JobRef.of(obj), context["ti"]
        for field, value in job.to_dict().items():
            ti.xcom_push(key=f"tfjob_{field}", value=value)
        if self.deferrable and self.get_logs and self.backend == "kubernetes":
            from airflow_tfjob.triggers import _logpositions

            ti.xcom_push(key=_logpositions.KEY, value={})  # nothing printed yet (see there)
        self._set_links(job)
        for link in self.operator_extra_links:
            if link.name in self.tfjob_links:
                ti.xcom_push(key=link.xcom_key, value=self.tfjob_links[link.name])

    def _set_links(self, job: JobRef) -> None:
        """The extra links' URLs for this job (read back by the links when the task ends)."""
        if self.backend == "kubernetes":
            self.tfjob_links = links.urls(job, self.kubernetes_conn_id)

    def _on_submitted(self, context: Context, obj: KubeObject) -> None:
        self._submitted = JobRef.of(obj)
        self._push_identity(context, obj)
        store = context.get("task_state_store")
        if store is not None:
            store.set(STATE_KEY, cast("JsonValue", self._submitted.to_dict()))  # a JSON object

    def on_kill(self) -> None:
        """Stop the job when the task is killed or marked: its backend's ``kill`` (Kubernetes:
        delete it per ``on_kill_action``; local: stop its replicas)."""
        if self._active is not None:
            self._active.kill("the task was killed")
        elif self._submitted is not None and self.on_kill_action == "delete_tfjob":
            from airflow_tfjob.backends.kubernetes import run  # after execute_complete

            run.delete(self.hook, self.log, self._submitted, "the task was killed")


def _extra_links(backend: str) -> tuple[BaseOperatorLink, ...]:
    """The dashboard link when ``[tfjob] tfjob_url_template`` is set, and the TFJobs page;
    none on the local backend (no cluster to look at)."""
    if backend != "kubernetes":
        return ()
    monitor = (links.TFJobMonitorLink(),)
    return (links.TFJobLink(), *monitor) if links.dashboard_template() else monitor


def _stored(context: Context, log: Any) -> dict[str, Any] | None:
    """The job an earlier try recorded in the task state store (Airflow 3.3+)."""
    if "task_state_store" not in context:
        features.say_once(
            log,
            "task_state_store",
            "This Airflow (before 3.3) has no task state store: a retry adopts its earlier "
            "try's TFJob by name only (the reaper deletes one a retry renamed)",
        )
    store = context.get("task_state_store")
    if store is None:
        return None
    value = store.get(STATE_KEY)
    return dict(value) if isinstance(value, Mapping) else None
