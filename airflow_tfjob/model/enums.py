"""Enumerations of the TFJob API, parsed leniently from strings.

The CRD schema has no enum for ``restartPolicy`` and the training operator's webhook does not check
it either, so a typo would only surface as a stuck job; we check every enum here instead.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from airflow_tfjob.model.errors import TFJobSpecError


class RestartPolicy(enum.StrEnum):
    """How the operator restarts a replica whose container exited (``restartPolicy``)."""

    ALWAYS = "Always"
    FAILURE = "OnFailure"
    NEVER = "Never"
    EXIT_CODE = "ExitCode"
    """Restart on exit codes >= 128 (signals, evictions); fail the job on 1-127."""


class CleanPodPolicy(enum.StrEnum):
    """Which pods the operator deletes when the job finishes (``runPolicy.cleanPodPolicy``)."""

    NONE = "None"
    RUNNING = "Running"
    ALL = "All"


class SuccessPolicy(enum.StrEnum):
    """When a job without a chief counts as succeeded (``successPolicy``)."""

    DEFAULT = ""
    """Worker 0 exited 0 (or the chief, when there is one)."""
    ALL_WORKERS = "AllWorkers"
    """Every worker exited 0."""


E = TypeVar("E", bound=enum.StrEnum)


def parse(enum_type: type[E], value: object, field: str) -> E:
    """Accept a member, its name or its value, case-insensitively ("failure", "OnFailure")."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        wanted = value.strip().lower().replace("-", "_")
        for member in enum_type:
            spellings = {
                member.name.lower(),
                member.value.lower(),
                member.name.lower().replace("_", ""),
            }
            if wanted in spellings:
                return member
    allowed = ", ".join(f"{enum_type.__name__}.{m.name} ({m.value!r})" for m in enum_type)
    raise TFJobSpecError(field, value, f"must be one of {allowed}")
