"""``TFJobOperator``'s argument checks: at DAG parse time, and again once its fields are rendered.

Each raises ``TFJobSpecError`` naming the argument, the value and what is allowed. Templated
values holding Jinja (or an ``XComArg``) are checked once ``rendered``: ``execute`` runs the
checks again first, before any API call. At parse time, a job that can be built from literal
values is built, so everything ``execute`` would refuse is refused then already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_tfjob import arguments
from airflow_tfjob.backends.kubernetes.request import ON_FINISH_ACTIONS, ON_KILL_ACTIONS
from airflow_tfjob.model import TfJob, TFJobSpecError, checks, validate_name
from airflow_tfjob.operators import _build
from airflow_tfjob.rules import trainjob

APIS = ("tfjob", "trainjob")

if TYPE_CHECKING:
    from airflow_tfjob.operators.tfjob import TFJobOperator

FLAGS = ("get_logs", "wait_until_finished", "deferrable", "deadline_backstop")


def check(op: TFJobOperator, *, rendered: bool) -> None:
    """Every argument of ``op``; with ``rendered``, the values Jinja or XComs left open too."""
    _job(op, rendered)
    _behaviour(op)
    arguments.connection(
        kubernetes_conn_id=op.kubernetes_conn_id,
        config_file=op.config_file,
        cluster_context=op.cluster_context,
        in_cluster=op.in_cluster,
        rendered=rendered,
    )
    _values(op, rendered)
    if not rendered:  # execute() builds (and so checks) the manifest itself
        _build_now(op)


def _job(op: TFJobOperator, rendered: bool) -> None:
    """``tfjob`` or ``tfjob_template``, of the kinds they take."""
    if op.tfjob is not None and op.tfjob_template is not None:
        raise TFJobSpecError(
            "tfjob_template", op.tfjob_template, "give tfjob or tfjob_template, not both"
        )
    if op.tfjob is not None and not isinstance(op.tfjob, TfJob):
        raise TFJobSpecError(
            "tfjob", op.tfjob, "must be a TfJob (or use tfjob_template)", show_value=False
        )
    template = op.tfjob_template
    if (
        template is not None
        and arguments.checked(template, rendered)
        and not isinstance(template, (Mapping, str))
    ):
        raise TFJobSpecError(
            "tfjob_template",
            template,
            "must be a TFJob manifest (or its spec) as a dict, YAML/JSON text, or the name "
            f"of a {'/'.join(op.template_ext)} file",
        )


def _behaviour(op: TFJobOperator) -> None:
    """The actions, flags and durations (never templated)."""
    if op.on_finish_action not in ON_FINISH_ACTIONS:
        allowed = f"must be one of {', '.join(map(repr, ON_FINISH_ACTIONS))}"
        raise TFJobSpecError("on_finish_action", op.on_finish_action, allowed)
    if op.on_kill_action not in ON_KILL_ACTIONS:
        allowed = f"must be one of {', '.join(map(repr, ON_KILL_ACTIONS))}"
        raise TFJobSpecError("on_kill_action", op.on_kill_action, allowed)
    for flag in FLAGS:
        arguments.boolean(getattr(op, flag), flag)
    arguments.boolean(op.may_end_from_trigger, "end_from_trigger")
    if op.backend == "local" and not op.wait_until_finished:
        raise TFJobSpecError(
            "wait_until_finished",
            False,
            "the local backend's replicas live only as long as the task, so it always "
            "waits (use backend='kubernetes')",
        )
    if op.api is not None and op.api not in APIS:
        raise TFJobSpecError("api", op.api, f"must be one of {', '.join(map(repr, APIS))} or None")
    arguments.seconds(op.poll_interval, "poll_interval")
    arguments.seconds(op.startup_timeout_seconds, "startup_timeout_seconds", optional=True)


def _values(op: TFJobOperator, rendered: bool) -> None:
    """The templated fields, each once its value is known."""

    def now(value: object) -> bool:
        return value is not None and arguments.checked(value, rendered)

    if now(op.name):
        validate_name(op.name)
    if now(op.namespace):
        checks.dns1123_label(op.namespace, "namespace")
    if now(op.labels):
        _build.no_reserved_keys(checks.label_map(op.labels, "labels"), "labels")
    if now(op.annotations):
        annotations = checks.annotation_map(op.annotations, "annotations")
        _build.no_reserved_keys(annotations, "annotations")
    image = op.image
    if now(image) and (not isinstance(image, str) or not image.strip()):
        raise TFJobSpecError("image", image, "must be a non-empty image reference")
    for field in ("command", "args"):
        if now(getattr(op, field)):
            checks.string_list(getattr(op, field), field)
    if now(op.env):
        for key in checks.string_map(op.env, "env", secret_values=True):
            checks.env_name(key, f"env[{key!r}]")


def _build_now(op: TFJobOperator) -> None:
    """Build what can be built from literal values at parse time: the model's manifest (and the
    local backend's plan of it), or a literal template the way ``execute`` will."""
    template = op.tfjob_template
    if template is None and not _templated(op.image, op.command, op.args, op.env):
        job = (op.tfjob or TfJob()).with_defaults(command=op.command, args=op.args, env=op.env)
        manifest = job.to_manifest("parse-check", "default", image=op.image)
        _build.label_pods(manifest, {})  # no replica label the provider's would replace
        if op.api == "trainjob":
            trainjob.to_trainjob(manifest)  # all of it fits a TrainJob?
        if op.backend == "local":
            from airflow_tfjob.backends.local import plan

            plan.replicas(manifest)  # every group has a command, env resolvable locally?
    elif _literal_template(template, op.template_ext) and not _templated(
        template, op.image, op.command, op.args, op.env, op.name, op.labels, op.annotations
    ):
        manifest, _ = op.build_manifest(_build.PARSE_CONTEXT)  # type: ignore[arg-type]
        if op.api == "trainjob":
            trainjob.to_trainjob(manifest)


def _templated(*values: Any) -> bool:
    return any(arguments.deferred(value) for value in values)


def _literal_template(template: object, extensions: Sequence[str]) -> bool:
    """A ``tfjob_template`` given in the DAG itself: a dict, or YAML/JSON text rather than the
    name of a file Airflow reads when the task runs."""
    if isinstance(template, str):
        return not template.endswith(tuple(extensions))
    return isinstance(template, Mapping)
