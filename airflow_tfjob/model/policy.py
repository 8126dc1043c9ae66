"""``RunPolicy`` and ``SchedulingPolicy``: run time limits, clean-up and gang scheduling.

Our default ``clean_pod_policy`` is ``RUNNING``, not the operator's ``None``: with ``None``, PS pods
(which never exit) keep running, holding their CPUs and GPUs, until somebody deletes the TFJob.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_tfjob.model import checks, enums, resources
from airflow_tfjob.model.enums import CleanPodPolicy
from airflow_tfjob.model.errors import TFJobSpecError

DEFAULT_CLEAN_POD_POLICY = CleanPodPolicy.RUNNING


def _optional_bool(value: object, field: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise TFJobSpecError(field, value, "must be True, False or None")


@dataclass(frozen=True)
class SchedulingPolicy:
    """Gang-scheduling hints for Volcano or the scheduler-plugins coscheduler."""

    min_available: int | None = None
    """Pods that must be schedulable together before any starts."""
    queue: str | None = None
    """Scheduler queue (immutable once the job exists)."""
    min_resources: resources.Resources | Mapping[str, resources.Quantity] | None = None
    """Resources the whole gang needs."""
    priority_class: str | None = None
    """PriorityClass name for the pod group."""
    schedule_timeout_seconds: int | None = None
    """How long the gang may wait to be scheduled."""

    def __post_init__(self) -> None:
        self.to_k8s()

    def to_k8s(self) -> dict[str, Any]:
        """The ``runPolicy.schedulingPolicy`` object."""
        field = "SchedulingPolicy"
        out: dict[str, Any] = {}
        if self.min_available is not None:
            out["minAvailable"] = checks.integer(self.min_available, f"{field}.min_available")
        for key, value in (("queue", self.queue), ("priorityClass", self.priority_class)):
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise TFJobSpecError(f"{field}.{key}", value, "must be a non-empty string")
                out[key] = value
        compute = resources.to_k8s(self.min_resources, f"{field}.min_resources")
        if compute:
            out["minResources"] = compute
        if self.schedule_timeout_seconds is not None:
            out["scheduleTimeoutSeconds"] = checks.integer(
                self.schedule_timeout_seconds, f"{field}.schedule_timeout_seconds", minimum=1
            )
        return out


@dataclass(frozen=True)
class RunPolicy:
    """Runtime policies of the job; ``RunPolicy()`` alone gives our defaults."""

    clean_pod_policy: CleanPodPolicy | str | None = DEFAULT_CLEAN_POD_POLICY
    """Which pods to delete when the job ends; None means our default, ``RUNNING``."""
    ttl_seconds_after_finished: int | None = None
    """Delete the TFJob (and its pods) this long after it finished."""
    active_deadline_seconds: int | None = None
    """Fail the job when it has been running this long (positive)."""
    backoff_limit: int | None = None
    """In-place restarts allowed before the job fails."""
    scheduling_policy: SchedulingPolicy | None = None
    """Gang-scheduling settings."""
    suspend: bool | None = None
    """Create the job suspended (no pods) until it is resumed."""

    def __post_init__(self) -> None:
        policy = self.clean_pod_policy
        parsed = (
            DEFAULT_CLEAN_POD_POLICY
            if policy is None
            else enums.parse(CleanPodPolicy, policy, "RunPolicy.clean_pod_policy")
        )
        object.__setattr__(self, "clean_pod_policy", parsed)
        if self.scheduling_policy is not None and not isinstance(
            self.scheduling_policy, SchedulingPolicy
        ):
            raise TFJobSpecError(
                "RunPolicy.scheduling_policy", self.scheduling_policy, "must be a SchedulingPolicy"
            )
        _optional_bool(self.suspend, "RunPolicy.suspend")
        self.to_k8s()

    def to_k8s(self) -> dict[str, Any]:
        """The ``spec.runPolicy`` object."""
        out: dict[str, Any] = {
            "cleanPodPolicy": enums.parse(
                CleanPodPolicy, self.clean_pod_policy, "RunPolicy.clean_pod_policy"
            ).value
        }
        numbers = (
            ("ttlSecondsAfterFinished", "ttl_seconds_after_finished", 0, checks.INT32_MAX),
            ("activeDeadlineSeconds", "active_deadline_seconds", 1, checks.INT64_MAX),
            ("backoffLimit", "backoff_limit", 0, checks.INT32_MAX),
        )
        for key, attr, minimum, maximum in numbers:
            value = getattr(self, attr)
            if value is not None:
                out[key] = checks.integer(
                    value, f"RunPolicy.{attr}", minimum=minimum, maximum=maximum
                )
        if self.scheduling_policy is not None:
            out["schedulingPolicy"] = self.scheduling_policy.to_k8s()
        if self.suspend is not None:
            out["suspend"] = self.suspend
        return out
