"""Errors of the Kubernetes side, typed by what the caller should do.

Hierarchy (``[no retry]``: also an ``AirflowFailException``, so the task fails at once, whatever
its ``retries``: the same request would fail the same way)::

    AirflowException
    └── TFJobError                     anything this provider raises at run time
        ├── TFJobAPIError              the API server refused a request (status, reason)
        │   ├── TFJobCRDNotInstalled   404 on the resource type: the job's CRD is missing [no retry]
        │   ├── TFJobNotFound          404 on one object
        │   ├── TFJobForbidden         403: which verb on which resource, as which user [no retry]
        │   ├── TFJobInvalid           422, or 400: the server's field errors [no retry]
        │   ├── TFJobConflict          409: it exists already (callers look again)
        │   ├── TFJobWatchExpired      410: the resourceVersion is too old; list again
        │   └── TFJobUnavailable       429 / 5xx / connection errors, after the retries
        ├── TFJobTLSError              the server's certificate is not trusted, or ours is
        │                              refused: never retried (hooks._retry) [no retry]
        ├── TFJobConfigError           no usable Kubernetes configuration (no kubeconfig and
        │                              not in a cluster, or a kubeconfig the client refuses)
        │                              [no retry]
        ├── TFJobSpecFailure           a TFJobSpecError met when the task runs (a templated
        │                              argument rendered invalid); also a TFJobSpecError [no retry]
        ├── TFJobFailed                the job ran and failed
        └── TFJobTimeout               a deadline passed; the job was deleted

``[no retry]`` holds where the task raises the error (the worker: submission, a synchronous
wait, a sensor's poke, ``execute_complete``). A deferred wait that meets one of these in the
triggerer (the permissions or the CRD removed while the job runs) reports it as its ``error``
event, which Airflow routes like any ``TaskFailedEvent``: up for retry while retries are left.
The next try then meets the same error on the worker, before anything is submitted, and fails
without a further retry.

Client exceptions never leak: ``translate`` chains them (``raise ... from``). Bodies that are not
a ``Status`` are truncated, and nothing in a message comes from a request's credentials.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_tfjob.model.errors import TFJobSpecError

if TYPE_CHECKING:
    from airflow_tfjob.rules.outcome import Verdict

MAX_BODY_CHARS = 256


class TFJobError(AirflowException):
    """Base class of this provider's run-time errors."""


class TFJobAPIError(TFJobError):
    """The Kubernetes API refused a request; ``status`` and ``reason`` say how."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class TFJobCRDNotInstalled(TFJobAPIError, AirflowFailException):
    """The hook's job resource (``tfjobs.kubeflow.org``, or ``trainjobs.trainer.kubeflow.org``
    for Trainer v2) does not exist on this cluster."""


class TFJobNotFound(TFJobAPIError):
    """The named object does not exist (any more)."""


class TFJobForbidden(TFJobAPIError, AirflowFailException):
    """The identity lacks an RBAC permission; an admin must grant it."""


class TFJobInvalid(TFJobAPIError, AirflowFailException):
    """The server's schema or admission rejected the object (422), or the request (400, e.g.
    ``fieldValidation=Strict`` meeting an unknown field); fix the job description."""


class TFJobConflict(TFJobAPIError):
    """The object exists already, or changed under us; read it again."""


class TFJobWatchExpired(TFJobAPIError):
    """410 Gone: the watch's resourceVersion was compacted away; relist and watch again."""


class TFJobUnavailable(TFJobAPIError):
    """The API server stayed unreachable, overloaded or failing through every retry."""


class TFJobTLSError(TFJobError, AirflowFailException):
    """TLS failed for a reason a retry cannot fix: the server's certificate is not trusted (or
    not for this host), or the server refused our client certificate."""


class TFJobConfigError(TFJobError, AirflowFailException):
    """The Kubernetes client could not be configured: no kubeconfig and no in-cluster service
    account, or a kubeconfig (file, context) it refuses. The message names what was looked for;
    a retry on the same host finds the same."""


class TFJobSpecFailure(TFJobSpecError, TFJobError, AirflowFailException):
    """A ``TFJobSpecError`` raised when the task runs (a templated argument that rendered
    invalid, a payload too large): the same message, and the task fails without a retry."""

    def __init__(self, message: str, field: str = "", allowed: str = "", value: Any = None) -> None:
        # not TFJobSpecError.__init__: the message is made already, with the value shown or not
        Exception.__init__(self, message)
        self.field, self.value, self.allowed = field, value, allowed

    @classmethod
    def of(cls, exc: TFJobSpecError) -> TFJobSpecFailure:
        """The failure for ``exc``, with its message and attributes unchanged."""
        return cls(str(exc), exc.field, exc.allowed, exc.value)

    def __reduce__(self) -> tuple[Any, ...]:
        # without the value: it may not pickle (Airflow pickles a task's exception)
        return (type(self), (str(self), self.field, self.allowed))


@contextlib.contextmanager
def spec_errors_fail_the_task(running: bool = True) -> Iterator[None]:
    """Turn a ``TFJobSpecError`` raised inside into a ``TFJobSpecFailure`` when the task is
    ``running``: a wrong job description fails the task at once, since no retry renders it right.
    (While a DAG file is parsed it stays a ``TFJobSpecError``.)"""
    try:
        yield
    except TFJobSpecFailure:
        raise
    except TFJobSpecError as exc:
        if not running:
            raise
        raise TFJobSpecFailure.of(exc) from exc


def unmapped(operator: object) -> bool:
    """Whether ``operator`` is being built from a mapped task's expanded values, as Airflow does
    when that task runs (``MappedOperator.unmap``), rather than when its DAG file is parsed.

    Airflow has no public flag for it; its own ``DecoratedOperator`` reads this same attribute
    (``airflow/sdk/bases/decorator.py``), so it lives as long as Airflow's decorators do."""
    return bool(getattr(operator, "_BaseOperator__from_mapped", False))


class TFJobFailed(TFJobError):
    """The job (a TFJob, or a TrainJob read as one) finished in the Failed state."""


class TFJobTimeout(TFJobError):
    """The job outlived its deadline (execution_timeout or active_deadline_seconds)."""


def for_verdict(ended: Verdict) -> TFJobError:
    """The exception a worker raises for a task that did not succeed (``rules.outcome``)."""
    kinds: dict[str, type[TFJobError]] = {
        "finished": TFJobFailed,
        "deadline": TFJobTimeout,
        "error": TFJobError,
    }
    return kinds[ended.kind](ended.message)


def _status_body(body: Any) -> dict[str, Any] | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return body if isinstance(body, dict) and body.get("kind") == "Status" else None


def _short(body: Any) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY_CHARS else text[: MAX_BODY_CHARS - 3] + "..."


def _field_errors(status: dict[str, Any]) -> str:
    causes = (status.get("details") or {}).get("causes") or []
    lines = [f"{c.get('field', '?')}: {c.get('message', c.get('reason', ''))}" for c in causes]
    return "; ".join(lines)


_NOT_INSTALLED = {
    "": "cannot {verb} {what}: the TFJob CRD is not installed (404 on the resource type) — "
    "is the Kubeflow training operator deployed on this cluster?",
    "trainjobs.trainer.kubeflow.org": "cannot {verb} {what}: the TrainJob CRD is not installed "
    "(404 on the resource type) — is Kubeflow Trainer v2 deployed on this cluster? Or use "
    "api='tfjob' with the training operator",
}
"""What a 404 on the resource type says, by resource (the TFJob's for any other)."""


def translate(
    status: int | None,
    reason: str,
    body: Any,
    *,
    verb: str,
    resource: str,
    namespace: str,
    name: str = "",
) -> TFJobAPIError:
    """The error to raise for an API failure of ``verb`` on ``resource`` in ``namespace``."""
    what = f"{resource} {namespace}/{name}" if name else f"{resource} in namespace {namespace}"
    parsed = _status_body(body)
    server = (parsed or {}).get("message") or _short(body) or reason
    if status == 404:
        details = (parsed or {}).get("details") or {}
        if parsed is None or not details.get("name"):
            return TFJobCRDNotInstalled(
                _NOT_INSTALLED.get(resource, _NOT_INSTALLED[""]).format(verb=verb, what=what),
                status=status,
                reason=reason,
            )
        return TFJobNotFound(f"{what} not found", status=status, reason=reason)
    if status == 403:
        return TFJobForbidden(
            f"forbidden: cannot {verb} {what}; the server said: {server}",
            status=status,
            reason=reason,
        )
    if status == 422 or (status == 400 and verb in ("create", "patch")):
        fields = _field_errors(parsed or {}) or server
        return TFJobInvalid(
            f"the API server rejected {what} ({verb}): {fields}", status=status, reason=reason
        )
    if status == 409:
        return TFJobConflict(f"conflict on {verb} {what}: {server}", status=status, reason=reason)
    if status == 410:
        return TFJobWatchExpired(f"watch of {what} expired: {server}", status=status, reason=reason)
    if status is not None and (status == 429 or status >= 500):
        return TFJobUnavailable(
            f"the API server kept failing to {verb} {what} (HTTP {status}): {server}",
            status=status,
            reason=reason,
        )
    return TFJobAPIError(
        f"cannot {verb} {what}: HTTP {status} {reason}: {server}", status=status, reason=reason
    )
