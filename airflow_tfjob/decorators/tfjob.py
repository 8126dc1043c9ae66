"""``@task.tfjob``: a decorated Python function is the training code of a TFJob (or TrainJob).

The carrier is an environment variable on every replica's ``tensorflow`` container (a TrainJob's
``trainer.env``): the function's source (decorators stripped) and its arguments, JSON (or, with
``use_pickle=True``, pickle), compressed (``AIRFLOW_TFJOB_PAYLOAD``), plus the stdlib-only runtime
itself (``AIRFLOW_TFJOB_RUNTIME``). No ConfigMap to create or clean up; the price is a size limit,
checked before anything is submitted. The XCom is the function's return value (the chief's, or
worker 0's), not the job status.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory

from airflow_tfjob import arguments, errors, runtime
from airflow_tfjob.model import TfJob, TFJobSpecError
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.operators.tfjob import TFJobOperator
from airflow_tfjob.rules import outcome, status
from airflow_tfjob.rules.report import TaskResult

if TYPE_CHECKING:
    from airflow.sdk import Context

MAX_PAYLOAD_BYTES = 128 * 1024 - len(runtime.PAYLOAD_ENV) - 2
"""Largest encoded payload: Linux refuses to ``exec`` with one environment string over 128 KiB
(``MAX_ARG_STRLEN``), in a container as on the local backend."""
_RUNTIME = runtime.encode(Path(runtime.__file__).read_bytes())


class _TFJobDecoratedOperator(DecoratedOperator, TFJobOperator):
    custom_operator_name = "@task.tfjob"
    template_fields: Sequence[str] = tuple(
        {"op_args", "op_kwargs", *TFJobOperator.template_fields} - {"command", "args"}
    )
    shallow_copy_attrs: Sequence[str] = ("python_callable",)

    def __init__(
        self,
        *,
        task_config: TfJob | None = None,
        use_pickle: bool = False,
        output_uri: str | None = None,
        ps_handled: bool = False,
        **kwargs: Any,
    ) -> None:
        # a mapped task's values arrive when it runs: an error there fails it at once
        with errors.spec_errors_fail_the_task(running=errors.unmapped(self)):
            if task_config is not None:
                if not isinstance(task_config, TfJob):
                    allowed = (
                        "must be a TfJob, e.g. TfJob(chief=Chief(), worker=Worker(replicas=2))"
                    )
                    raise TFJobSpecError("task_config", task_config, allowed, show_value=False)
                if kwargs.get("tfjob") is not None:
                    allowed = "give task_config or tfjob, not both"
                    raise TFJobSpecError("tfjob", kwargs["tfjob"], allowed)
                kwargs["tfjob"] = task_config
            if kwargs.get("tfjob_template") is not None:
                raise TFJobSpecError(
                    "tfjob_template",
                    kwargs["tfjob_template"],
                    "@task.tfjob builds the job from task_config=TfJob(...) (groups may take "
                    "pod_template); use TFJobOperator for a raw template",
                )
            if kwargs.get("wait_until_finished") is False:
                raise TFJobSpecError(
                    "wait_until_finished",
                    False,
                    "@task.tfjob returns the function's value, so it waits for the job (use "
                    "TFJobOperator to submit without waiting)",
                )
            for name in ("command", "args"):
                if kwargs.get(name) is not None:
                    raise TFJobSpecError(
                        name,
                        kwargs[name],
                        "@task.tfjob runs the decorated function; use @task.tfjob without it, or "
                        "TFJobOperator to run a command",
                    )
            kwargs["command"] = ["python", "-c", runtime.BOOTSTRAP]
            self.use_pickle = bool(arguments.boolean(use_pickle, "use_pickle"))
            self.ps_handled = bool(arguments.boolean(ps_handled, "ps_handled"))
            self.output_uri = arguments.text(output_uri, "output_uri")
            super().__init__(**kwargs)
            self._payload_set = False
            if not self.use_pickle:  # what is rendered or pulled later is checked in payload()
                _check_json(self.python_callable.__name__, self.op_args, self.op_kwargs, now=True)
            if self.env is not None and not arguments.deferred(self.env):
                _no_reserved_env(self.env, None)
            if self.tfjob is not None:  # a group's own env would win over the payload
                _no_reserved_env({}, self.tfjob.to_manifest("parse-check", "default", image="any"))

    def payload(self, output_replica: str) -> str:
        """The encoded payload for this run, or a ``TFJobSpecError`` saying what is wrong."""
        name = self.python_callable.__name__
        body: dict[str, Any] = {
            "name": name,
            "source": self.get_python_source(),  # type: ignore[no-untyped-call]
            "output_uri": self.output_uri,
            "ps_handled": self.ps_handled,
            "output_replica": output_replica,
        }
        if self.use_pickle:
            import pickle

            body["serializer"] = "pickle"
            body["arguments"] = base64.b64encode(
                pickle.dumps((list(self.op_args), dict(self.op_kwargs)))
            ).decode()
        else:
            _check_json(name, self.op_args, self.op_kwargs)
            body.update(args=list(self.op_args), kwargs=dict(self.op_kwargs))
        raw = json.dumps(body).encode()
        encoded = runtime.encode(raw)
        if len(encoded) > MAX_PAYLOAD_BYTES:
            raise TFJobSpecError(
                f"payload of {name}()",
                f"{len(encoded) // 1024} KiB",
                f"must be at most {MAX_PAYLOAD_BYTES // 1024} KiB (an environment variable on "
                "every replica, and Linux limits one to 128 KiB); pass large inputs by "
                "reference, e.g. a path or URI",
                show_value=True,
            )
        return encoded

    def execute(self, context: Context) -> Any:
        # a wrong argument (rendered, or the function's) fails without a retry
        with errors.spec_errors_fail_the_task():
            self._check_arguments(rendered=True)
            manifest, _ = self.build_manifest(context)
            if not self._payload_set:  # (a second execute() finds its own payload in env)
                _no_reserved_env(self.env or {}, manifest)
            output_replica = status.output_replica(status.replica_counts(manifest))
            self.env = {
                **(self.env or {}),
                runtime.PAYLOAD_ENV: self.payload(output_replica),
                runtime.RUNTIME_ENV: _RUNTIME,
                runtime.TERMINATION_ENV: runtime.DEFAULT_TERMINATION_LOG,
            }
            self._payload_set = True
        return cast(TaskResult, super().execute(context))["output"]  # it waits: a result

    def ending(self) -> outcome.Ending:
        """The function's return value is the XCom (each key too, with ``multiple_outputs``)."""
        return outcome.Ending(
            returns="output",
            multiple_outputs=bool(self.multiple_outputs),
            on_finish_action=self.on_finish_action,
        )


RESERVED_ENV = (runtime.PAYLOAD_ENV, runtime.RUNTIME_ENV, runtime.TERMINATION_ENV)
"""What ``@task.tfjob`` sets on every replica to run the function: never the user's."""


def _no_reserved_env(env: Any, manifest: KubeObject | None) -> None:
    """Refuse a user's env variable that ``@task.tfjob`` sets itself (``env=`` or a group's env
    in ``manifest``): one of the two values would silently lose."""
    found = [(f"env[{name!r}]", name) for name in env if name in RESERVED_ENV]
    for rtype, rspec in ((manifest or {}).get("spec", {}).get("tfReplicaSpecs") or {}).items():
        for container in rspec["template"]["spec"]["containers"]:
            for item in container.get("env") or []:
                if item.get("name") in RESERVED_ENV and item.get("name") not in env:
                    found.append((f"{rtype}.env[{item['name']!r}]", item["name"]))
    for field, name in found[:1]:
        raise TFJobSpecError(
            field,
            name,
            "is set by @task.tfjob to run the function on every replica; choose another name "
            f"(reserved: {', '.join(RESERVED_ENV)})",
        )


def _check_json(name: str, args: Any, kwargs: Any, *, now: bool = False) -> None:
    """The function's arguments travel as JSON (without ``use_pickle``): refuse any that is not
    (``now``: at construction, skipping Jinja and XComArgs, which are resolved later)."""
    for value in [*args, *kwargs.values()]:
        if now and arguments.deferred(value):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TFJobSpecError(
                f"arguments of {name}()",
                value,
                f"must be JSON data (or set use_pickle=True): {exc}",
            ) from None


def tfjob_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """``@task.tfjob(...)``: run the function in every replica of a TFJob (or TrainJob).

    Accepts everything ``TFJobOperator`` accepts, and ``task_config=TfJob(...)`` (flytekit's
    spelling), ``use_pickle`` (arguments as pickle instead of JSON), ``output_uri`` (where a return
    value over 4 KiB is written; the URI is then the result) and ``ps_handled`` (PS replicas run
    the function instead of serving variables).
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_TFJobDecoratedOperator,
        **kwargs,
    )
