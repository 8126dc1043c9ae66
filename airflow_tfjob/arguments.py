"""Checks of the arguments users give ``TFJobOperator``, ``TFJobSensor`` and ``@task.tfjob``.

Each raises ``TFJobSpecError`` naming the argument, the value and what is allowed, so a wrong
argument is an error when the DAG is parsed, never a ``TypeError`` after a job was submitted.
A value that is only known when the task runs — Jinja in a templated field, an ``XComArg`` — is
left alone here (:func:`deferred`); the task checks it again after rendering, in ``execute``,
before any API call. A module of its own, below the operators, the sensor, the decorator and the
event trigger that all take these arguments (the layers contract keeps them from importing each
other), beside ``errors``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow.sdk.definitions._internal.mixins import ResolveMixin

from airflow_tfjob.model import TFJobSpecError

PHASES = ("Pending", "Created", "Running", "Restarting", "Succeeded", "Failed", "Suspended")
"""A TFJob's phases (``rules.status.Phase``), what a sensor can wait for or fail on."""


def deferred(value: object) -> bool:
    """Whether ``value`` is known only when the task runs: Jinja (``{{``, ``{%``) in a string
    anywhere inside it, or an ``XComArg`` (any runtime-resolved value)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, ResolveMixin):
        return True
    if isinstance(value, Mapping):
        return any(deferred(k) or deferred(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(deferred(item) for item in value)
    return False


def boolean(value: object, field: str, *, optional: bool = False) -> bool | None:
    """``True`` or ``False`` (``None`` too when ``optional``); ``"no"`` or ``0`` are refused,
    because ``"no"`` is true."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        allowed = "True, False or None" if optional else "True or False"
        raise TFJobSpecError(field, value, f"must be {allowed} (a bool, not a string or number)")
    return value


def seconds(
    value: object, field: str, *, optional: bool = False, zero: bool = False
) -> float | None:
    """A finite number of seconds above zero (or zero, with ``zero``); ``None`` when
    ``optional``. Strings, bools, NaN and infinity are refused."""
    if value is None and optional:
        return None
    number = (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    )
    if not number or value < 0 or (value == 0 and not zero):  # type: ignore[operator]
        what = "a number of seconds, 0 or more" if zero else "a positive number of seconds"
        raise TFJobSpecError(field, value, f"must be {what}" + (" or None" if optional else ""))
    return float(value)  # type: ignore[arg-type]


def text(value: object, field: str, *, optional: bool = True) -> str | None:
    """A non-empty string (``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TFJobSpecError(
            field, value, "must be a non-empty string" + (" or None" if optional else "")
        )
    return value


def path(value: object, field: str) -> str | None:
    """A file path (a string or ``os.PathLike``), or ``None``."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise TFJobSpecError(field, value, "must be a file path (a non-empty string) or None")
    return value


def one_of(value: object, field: str, allowed: Iterable[str]) -> str:
    """One of ``allowed``, compared case-insensitively; returns the canonical spelling."""
    choices = tuple(allowed)
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    raise TFJobSpecError(field, value, f"must be one of {', '.join(map(repr, choices))}")


def phases(value: object, field: str) -> tuple[str, ...]:
    """A list of TFJob phases; a lone string is refused (it would be read letter by letter)."""
    if isinstance(value, str) or not isinstance(value, (Sequence, set, frozenset)):
        raise TFJobSpecError(
            field, value, f"must be a list of phases, e.g. ['Failed'], from {', '.join(PHASES)}"
        )
    return tuple(one_of(item, f"{field}[{i}]", PHASES) for i, item in enumerate(value))


def connection(
    *,
    kubernetes_conn_id: object,
    config_file: object,
    cluster_context: object,
    in_cluster: object,
    rendered: bool,
) -> None:
    """The connection arguments the hooks are built from (``cluster_context`` may be templated:
    checked only once ``rendered``)."""
    text(kubernetes_conn_id, "kubernetes_conn_id")
    path(config_file, "config_file")
    if rendered or not deferred(cluster_context):
        text(cluster_context, "cluster_context")
    boolean(in_cluster, "in_cluster", optional=True)


def checked(value: Any, rendered: bool) -> bool:
    """Whether a (possibly templated) value can be checked now: always once rendered, else
    only when it holds no Jinja and no XComArg."""
    return rendered or not deferred(value)
