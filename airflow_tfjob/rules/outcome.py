"""How a deferred wait ends its task: one set of rules for both places that can end it.

A ``TFJobTrigger`` fires one event (``TFJobEvent``: finished, deadline or error). Either the
worker resumes with it (``execute_complete``), or the trigger ends the task itself in the
triggerer (``end_from_trigger``). Both read the event through :func:`verdict` with the task's
:class:`Ending`, so the task's state, return value, failure message and clean-up are the same
whichever place ends it. Pure: no I/O, no Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypedDict

from airflow_tfjob.rules.report import TaskResult

Returns = Literal["result", "output"]
"""The XCom ``return_value``: the whole result (operator, sensor) or its ``output`` (the
function's return value, ``@task.tfjob``)."""
Kind = Literal["finished", "deadline", "error"]


class TFJobEvent(TypedDict):
    """How a wait ended: all a task needs to end (``verdict`` reads it). ``JobFollower.run``
    returns it; ``TFJobTrigger`` fires it when the worker ends the task."""

    kind: Kind
    name: str
    namespace: str
    uid: str
    message: str
    result: TaskResult | None
    """The XCom result (state, conditions, replica statuses, times, output) when finished."""
    failure: str | None
    """Why the job failed, when it did."""


@dataclass(frozen=True)
class Ending:
    """What the task makes of its trigger's event (serialized into the trigger's kwargs)."""

    success_states: tuple[str, ...] = ("Succeeded",)
    """Phases that end the task successfully (the sensor's ``target_state``)."""
    returns: Returns = "result"
    multiple_outputs: bool = False
    """Push each key of a dict return value as an XCom of its own, as ``@task`` does."""
    on_finish_action: str | None = "delete_succeeded_tfjob"
    """``delete_tfjob``, ``delete_succeeded_tfjob``, ``keep_tfjob``; None never deletes (a
    sensor's job is not its own)."""
    skip_on_failure: bool = False
    """A failure skips the task instead (a sensor's ``soft_fail`` / ``never_fail``)."""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success_states": list(self.success_states)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> Ending:
        if not value:
            return cls()
        return cls(**{**value, "success_states": tuple(value.get("success_states", ()))})


@dataclass(frozen=True)
class Verdict:
    """How the task ends."""

    ok: bool
    kind: Kind
    message: str
    """The event's message, or the whole failure report when the job failed."""
    value: Any = None
    """The return value (when ``ok``)."""
    delete: bool = False
    """Whether ``on_finish_action`` deletes the job now that it finished (its logs and output
    are safe); a job deleted at a deadline was deleted already."""
    skip: bool = False
    """Whether a failure skips the task rather than failing it."""

    def xcoms(self, ending: Ending) -> dict[str, Any]:
        """The XComs the worker would push on success: ``return_value``, and with
        ``multiple_outputs`` each key of a dict value."""
        if not self.ok:
            return {}
        pushed = {"return_value": self.value}
        if ending.multiple_outputs and isinstance(self.value, Mapping):
            pushed.update({str(k): v for k, v in self.value.items()})
        return pushed


def deletes(on_finish_action: str | None, phase: str) -> bool:
    """Whether ``on_finish_action`` deletes a job that finished in ``phase``."""
    return on_finish_action == "delete_tfjob" or (
        on_finish_action == "delete_succeeded_tfjob" and phase == "Succeeded"
    )


def verdict(event: TFJobEvent, ending: Ending) -> Verdict:
    """The task's end for one trigger event."""
    kind: Kind = event["kind"]
    result = event.get("result")
    if kind != "finished" or result is None:
        failed: Kind = "deadline" if kind == "deadline" else "error"
        return Verdict(False, failed, str(event["message"]), skip=ending.skip_on_failure)
    state = result["state"]
    delete = deletes(ending.on_finish_action, state)
    if state in ending.success_states:
        value = result.get("output") if ending.returns == "output" else result
        return Verdict(True, kind, str(event["message"]), value=value, delete=delete)
    wanted = " or ".join(ending.success_states)
    where = f"{event['namespace']}/{event['name']}"
    message = event.get("failure") or f"TFJob {where} is {state}, not {wanted}"
    return Verdict(False, kind, message, delete=delete, skip=ending.skip_on_failure)
