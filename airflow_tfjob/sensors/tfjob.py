"""``TFJobSensor``: wait for a TFJob (or TrainJob: ``api``) created elsewhere to reach a state.

Poke mode reads the job each ``poke_interval``; deferrable mode waits in the triggerer with the
same ``TFJobTrigger`` the operator uses (one shared watch per namespace). A job that does not
exist is a clear error after ``missing_grace_seconds``, not an endless wait.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.providers.common.compat.sdk import AirflowSensorTimeout
from airflow.sdk.bases.sensor import BaseSensorOperator, PokeReturnValue

from airflow_tfjob import arguments, errors
from airflow_tfjob.model import TFJobSpecError, checks

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_tfjob.hooks.tfjob import TFJobHook
    from airflow_tfjob.model.kube import KubeObject
    from airflow_tfjob.rules.follow import Follow, Limits
    from airflow_tfjob.rules.outcome import Ending, TFJobEvent
    from airflow_tfjob.rules.report import TaskResult


class TFJobSensor(BaseSensorOperator):
    """Succeed when the job reaches ``target_state``; fail when it reaches one of ``fail_on``.

    :param tfjob_name: The job's name, a TFJob's or a TrainJob's (templated).
    :param namespace: Its namespace (templated); default: the connection's, else ``default``.
    :param kubernetes_conn_id: The ``kubernetes`` connection.
    :param config_file: A kubeconfig file, overriding the connection's.
    :param cluster_context: The kubeconfig context.
    :param in_cluster: Use the worker pod's service account.
    :param target_state: The phase to wait for (``Succeeded``, ``Running``, ...).
    :param fail_on: Phases that fail the sensor at once.
    :param missing_grace_seconds: How long a missing job is waited for before failing.
    :param deferrable: Wait in the triggerer instead of poking from a worker.
    :param end_from_trigger: When deferred, end the task in the triggerer (see
        ``TFJobOperator``); False resumes on a worker.
    :param api: ``tfjob`` or ``trainjob`` (a TrainJob of Kubeflow Trainer v2, read as a TFJob);
        default: the connection's ``tfjob_api``, else what the cluster serves.
    """

    template_fields: Sequence[str] = ("tfjob_name", "namespace")
    ui_color = "#ffd08a"

    def __init__(
        self,
        *,
        tfjob_name: str,
        namespace: str | None = None,
        kubernetes_conn_id: str | None = "kubernetes_default",
        config_file: str | None = None,
        cluster_context: str | None = None,
        in_cluster: bool | None = None,
        target_state: str = "Succeeded",
        fail_on: Sequence[str] = ("Failed",),
        missing_grace_seconds: float = 60.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        end_from_trigger: bool = True,
        api: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api = api
        # not `end_from_trigger`: Airflow refuses DAGs declaring that when listeners exist
        self.may_end_from_trigger = end_from_trigger
        self.tfjob_name, self.namespace = tfjob_name, namespace
        self.kubernetes_conn_id, self.config_file = kubernetes_conn_id, config_file
        self.cluster_context, self.in_cluster = cluster_context, in_cluster
        self.target_state, self.fail_on = target_state, fail_on
        self.missing_grace_seconds, self.deferrable = missing_grace_seconds, deferrable
        self._seen = False
        """Whether this try has seen the job (poke mode keeps the object between pokes)."""
        # a mapped task's values arrive when it runs: an error there fails it at once
        with errors.spec_errors_fail_the_task(running=errors.unmapped(self)):
            self._check_arguments()

    def _check_arguments(self, *, rendered: bool = False) -> None:
        """Every argument's type and range, when the DAG is parsed; the templated ones holding
        Jinja once ``rendered`` (``execute`` calls this again first, before any API call)."""
        if self.tfjob_name is None or arguments.checked(self.tfjob_name, rendered):
            # DNS-1035, as the training operator's admission webhook requires of a TFJob's name
            checks.dns1035_label(self.tfjob_name, "tfjob_name")
        if self.namespace is not None and arguments.checked(self.namespace, rendered):
            checks.dns1123_label(self.namespace, "namespace")
        arguments.connection(
            kubernetes_conn_id=self.kubernetes_conn_id,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
            in_cluster=self.in_cluster,
            rendered=True,  # not templated here
        )
        self.target_state = arguments.one_of(self.target_state, "target_state", arguments.PHASES)
        self.fail_on = arguments.phases(self.fail_on, "fail_on")
        if self.target_state in self.fail_on:
            raise TFJobSpecError(
                "target_state", self.target_state, f"is also in fail_on {list(self.fail_on)!r}"
            )
        arguments.seconds(self.missing_grace_seconds, "missing_grace_seconds", zero=True)
        arguments.boolean(self.deferrable, "deferrable")
        arguments.boolean(self.may_end_from_trigger, "end_from_trigger")
        if self.api not in (None, "tfjob", "trainjob"):
            raise TFJobSpecError("api", self.api, "must be one of 'tfjob', 'trainjob' or None")

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

    def _namespace(self) -> str:
        return self.namespace or self.hook.get_namespace() or "default"

    def _where(self) -> str:
        return f"{self._namespace()}/{self.tfjob_name}"

    def _check(self, context: Context) -> TaskResult | None:
        """The job's result when it reached the target, None while waiting; raises on failure."""
        from airflow_tfjob.rules.follow import DELETED, Follow

        where, limits = self._where(), self._limits(context)
        self.hook.retry_until = limits.deadline  # a throttled API does not stretch the timeout
        try:
            obj = self.hook.get(self.tfjob_name, self._namespace())
        except errors.TFJobUnavailable as exc:  # as the trigger does: look again, in time
            from airflow_tfjob.backends.kubernetes.messages import AGAIN

            self.log.warning(AGAIN, where, "read it", exc, float(self.poke_interval))
            return None
        except errors.TFJobNotFound:
            if self._seen:  # it existed a poke ago: deleted, not late; no grace to wait out
                raise errors.TFJobError(f"TFJob {where} {DELETED}") from None
            waited = time.time() - _started(context)
            if waited > self.missing_grace_seconds:
                raise errors.TFJobError(
                    f"TFJob {where} does not exist (waited {waited:.0f} s, missing_grace_seconds="
                    f"{self.missing_grace_seconds:.0f})"
                ) from None
            self.log.info("TFJob %s does not exist yet", where)
            return None
        self._seen = True
        follow = Follow(obj, limits)
        state = follow.state
        self.log.info("TFJob %s: %s", where, state.summary())
        if not follow.done:
            if (expiry := follow.expired(time.time())) is not None:
                raise AirflowSensorTimeout(expiry.message)
            return None
        if state.is_terminal:
            self._read_pods(follow)  # the output, or the failing replicas, as the operator has them
        if state.phase in self.fail_on:
            raise errors.TFJobFailed(
                follow.failure(lambda _: [])
                or f"TFJob {where} is {state.phase}: {state.reason}: {state.message}"
            )
        if state.phase == self.target_state:
            return follow.result()
        raise errors.TFJobFailed(
            f"TFJob {where} finished as {state.phase}, not {self.target_state}"
        )

    def _limits(self, context: Context) -> Limits:
        """The job is not the sensor's: it waits for ``target_state`` until ``timeout`` (from
        the task's start, as Airflow counts it) and never deletes."""
        from airflow_tfjob.rules.follow import Limits

        states = (self.target_state, *self.fail_on)
        deadline = _started(context) + self.timeout if self.timeout else None
        return Limits(
            deadline=deadline, owned=False, target_states=states, awaited=(self.target_state,)
        )

    def _read_pods(self, follow: Follow) -> None:
        """What the job's pods show (its output, its failures), when they can be read."""

        try:
            pods, _ = self.hook.list_pods(self.tfjob_name, self._namespace())
        except errors.TFJobError as exc:
            self.log.warning("Cannot read the pods of TFJob %s: %s", self._where(), exc)
            return
        for pod in pods:
            follow.pod(pod)

    def poke(self, context: Context) -> PokeReturnValue:
        result = self._check(context)
        return PokeReturnValue(is_done=result is not None, xcom_value=result)

    def execute(self, context: Context) -> Any:
        # a name or namespace rendered wrong fails without a retry, before any API call
        with errors.spec_errors_fail_the_task():
            self._check_arguments(rendered=True)
        if not self.deferrable:
            return super().execute(context)

        # the timeout counts from the task's start, as in poke mode: not from the deferral,
        # which may come after a wait for the job to appear or for a throttled API to answer
        deadline = self._limits(context).deadline
        while True:  # a missing job is looked for here, within missing_grace_seconds only
            result = self._check(context)
            if result is not None:
                return result
            try:
                obj = self.hook.get(self.tfjob_name, self._namespace())
            except (errors.TFJobNotFound, errors.TFJobUnavailable) as exc:
                if deadline is not None and time.time() >= deadline:
                    why = "it does not exist" if isinstance(exc, errors.TFJobNotFound) else exc
                    raise AirflowSensorTimeout(
                        f"TFJob {self._where()} did not reach {self.target_state} before the "
                        f"sensor's timeout ({why})"
                    ) from None
                time.sleep(float(self.poke_interval))
                continue
            self._defer(obj, deadline)

    def _defer(self, obj: KubeObject, deadline: float | None) -> None:
        from airflow_tfjob.triggers import _ending
        from airflow_tfjob.triggers.tfjob import TFJobTrigger

        meta = obj["metadata"]
        trigger = TFJobTrigger(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            settings=self.hook.trigger_settings(),
            poll_interval=float(self.poke_interval),
            on_kill_action="keep_tfjob",
            target_states=[self.target_state, *self.fail_on],
            deadline=deadline,
            delete_at_deadline=False,  # not our job: a sensor only stops watching
            ending=self._ending().to_dict(),
            end_from_trigger=_ending.in_triggerer(self.may_end_from_trigger, self.log),
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def _ending(self) -> Ending:
        """Success only at ``target_state``; never deletes; a failure skips with ``soft_fail``."""
        from airflow_tfjob.rules.outcome import Ending

        return Ending(
            success_states=(self.target_state,),
            on_finish_action=None,
            skip_on_failure=bool(self.soft_fail or self.never_fail),
        )

    def execute_complete(self, context: Context, event: TFJobEvent) -> Any:
        """The trigger fired (and did not end the task itself): the job's status is the XCom."""
        from airflow_tfjob.rules import outcome

        ended = outcome.verdict(event, self._ending())
        if ended.kind == "deadline":  # as in poke mode: a sensor's timeout is not retried
            raise AirflowSensorTimeout(ended.message)
        if not ended.ok:
            raise errors.for_verdict(ended)
        return ended.value


def _started(context: Context) -> float:
    start = getattr(context["ti"], "start_date", None)
    return start.timestamp() if start is not None else time.time()
