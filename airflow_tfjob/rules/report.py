"""What the task returns and what it says when the job failed (pure formatting)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, TypedDict

from airflow_tfjob.model.kube import JobCondition, KubeObject
from airflow_tfjob.rules import status
from airflow_tfjob.rules.jobref import JobRefDict
from airflow_tfjob.rules.status import JobState, Phase, ReplicaOutcome

MAX_MESSAGE_CHARS = 1000
NO_PODS = "no pods were created — is the training operator running?"


class TaskResult(TypedDict):
    """The XCom ``return_value`` of a task that followed its job to the end (the operator's, the
    sensor's, either backend's)."""

    name: str | None
    namespace: str | None
    uid: str | None
    state: Phase
    """The job's phase when the task ended (``Succeeded``, ``Failed``, a sensor's target)."""
    conditions: list[JobCondition]
    """The job's conditions, as the API returned them."""
    replica_statuses: dict[str, dict[str, Any]]
    """Per replica type: ``active``, ``succeeded``, ``failed``."""
    start_time: str | None
    completion_time: str | None
    output: Any
    """The output replica's termination message: its value when it is JSON, else its text
    (None without one)."""


class Submitted(JobRefDict):
    """The XCom ``return_value`` of an operator that does not wait for its job
    (``wait_until_finished=False``)."""

    state: Literal["Submitted"]


class EventPayload(TaskResult):
    """What ``TFJobEventTrigger`` fires with (an asset event's ``extra["payload"]``)."""

    phase: Phase
    """``state`` again, under the name asset consumers look for."""


def result(obj: KubeObject, state: JobState, output: ReplicaOutcome | None) -> TaskResult:
    """The XCom ``return_value``: identity, final status, and the parsed output."""
    meta = obj.get("metadata") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "state": state.phase,
        "conditions": list(state.conditions),
        "replica_statuses": state.replica_statuses,
        "start_time": state.start_time,
        "completion_time": state.completion_time,
        "output": status.parse_output(output.message) if output else None,
    }


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def failure_message(
    where: str,
    state: JobState,
    failures: Iterable[ReplicaOutcome],
    tail: Callable[[ReplicaOutcome], list[str]],
) -> str:
    """Why the job failed: failing replicas, the earliest one's message or log, the condition.

    A replica that failed more than once (re-created, or restarted in place) is shown by its
    last failure: its termination message, else ``tail`` of that very pod (by uid)."""
    failures = list(failures)
    lines = [f"TFJob {where} failed: {state.reason or 'Failed'}: {state.message or 'no message'}"]
    if failures:
        described = ", ".join(_described(f) for f in failures)
        lines.append(f"Failed replicas: {described}")
        first = [f for f in failures if f.replica == failures[0].replica][-1]
        if first.message:
            lines.append(f"{first.replica} termination message: {_clip(first.message.strip())}")
        else:
            last = tail(first)
            if last:
                lines.append(f"{first.replica} last log lines:\n" + _clip("\n".join(last)))
    return "\n".join(lines)


def _described(failure: ReplicaOutcome) -> str:
    """``worker-1 (exit code 2)``, ``worker-1 (exit code 137, Evicted)``, ``worker-1 (Evicted)``."""
    if failure.exit_code is None:
        return f"{failure.replica} ({failure.reason})"
    evicted = ", Evicted" if failure.reason == "Evicted" else ""
    return f"{failure.replica} (exit code {failure.exit_code}{evicted})"


def not_started_message(
    where: str,
    seconds: float,
    outcomes: Iterable[ReplicaOutcome],
    *,
    ended: str = "the job was deleted",
) -> str:
    """No replica ran within the start-up timeout: say what each is waiting for."""
    waiting = "; ".join(
        f"{o.replica}: {o.waiting_reason or 'Pending'}"
        for o in sorted(outcomes, key=lambda o: o.replica)
    )
    return (
        f"no replica of TFJob {where} started within {seconds:.0f} s (startup_timeout_seconds); "
        f"{ended}. Waiting: {waiting or NO_PODS}"
    )


def deadline_message(where: str, phase: str, *, ended: str = "it was deleted") -> str:
    """The task's ``execution_timeout`` passed first (every backend and mode says it so)."""
    return f"TFJob {where} did not finish before the task's execution_timeout ({phase}); {ended}"
